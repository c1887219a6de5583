-- The seed's migrations/001_create_customers.sql, newest version, as this project
-- carries it: the same statements, without the seed's comments and blank lines and
-- with its function and trigger each on one line. So not byte for byte: only
-- whitespace and comments differ (PostgreSQL keeps a function's body as written, so
-- the seed's own file leaves update_updated_at_column() with other whitespace).
--
-- The seed's earlier versions said `status customer_status DEFAULT 'active'`; the
-- newest says 'inactive'. Alembic revision 0001 builds the earlier schema (types,
-- columns, constraint and index names, trigger; default 'active') and revision 0005
-- changes the default to 'inactive', so a database at head has this file's schema
-- plus our additions. Revision 0001 does NOT insert the three sample rows at the end:
-- a production database gets no test customers.
--
-- A database built from either version (by the seed or by hand) is adopted without
-- data loss, its rows kept:
--     python -m models.migrate --stamp 0001 && python -m models.migrate
-- (or alembic stamp 0001 && alembic upgrade head). PostgreSQL 13+: gen_random_uuid()
-- is built in from 13 on; older servers need CREATE EXTENSION pgcrypto first.

CREATE TYPE service_type AS ENUM ('pppoe', 'hotspot', 'static_ip');
CREATE TYPE customer_status AS ENUM ('active', 'suspended', 'inactive', 'pending');
CREATE TABLE IF NOT EXISTS customers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    mikrotik_id VARCHAR(100) NOT NULL,
    username VARCHAR(100) NOT NULL,
    name VARCHAR(255) NOT NULL,
    phone VARCHAR(20),
    email VARCHAR(255),
    service_type service_type NOT NULL,
    pppoe_username VARCHAR(100),
    pppoe_password VARCHAR(100),
    pppoe_profile VARCHAR(100),
    hotspot_username VARCHAR(100),
    hotspot_password VARCHAR(100),
    hotspot_mac_address MACADDR,
    static_ip INET,
    assigned_ip INET,
    mac_address MACADDR,
    last_online TIMESTAMPTZ,
    status customer_status DEFAULT 'inactive',
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    UNIQUE (mikrotik_id, username),
    UNIQUE (mikrotik_id, pppoe_username),
    UNIQUE (mikrotik_id, hotspot_username)
);
CREATE INDEX IF NOT EXISTS idx_customers_mikrotik_id ON customers(mikrotik_id);
CREATE INDEX IF NOT EXISTS idx_customers_username ON customers(username);
CREATE INDEX IF NOT EXISTS idx_customers_pppoe ON customers(pppoe_username);
CREATE INDEX IF NOT EXISTS idx_customers_hotspot ON customers(hotspot_username);
CREATE INDEX IF NOT EXISTS idx_customers_service_type ON customers(service_type);
CREATE INDEX IF NOT EXISTS idx_customers_status ON customers(status);
CREATE INDEX IF NOT EXISTS idx_customers_mac ON customers(mac_address);
CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS TRIGGER AS $$ BEGIN NEW.updated_at = NOW(); RETURN NEW; END; $$ LANGUAGE plpgsql;
CREATE TRIGGER update_customers_updated_at BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
INSERT INTO customers (mikrotik_id, username, name, service_type, pppoe_username, pppoe_password)
VALUES ('mikrotik-001', 'customer1', 'Test Customer 1', 'pppoe', 'tes', '1122'),
       ('mikrotik-001', 'customer2', 'Test Customer 2', 'pppoe', 'tes1', '1122'),
       ('mikrotik-001', 'customer3', 'Test Customer 3', 'hotspot', NULL, NULL)
ON CONFLICT DO NOTHING;
