-- migrations/001_create_customers.sql
--
-- The seed's customers schema, RECONSTRUCTED from the data-layer issue (the
-- original file was not available). Alembic revision 0001 builds exactly this;
-- a database created by hand from this script can be adopted with
--     alembic stamp 0001 && alembic upgrade head
-- PostgreSQL 13+ (gen_random_uuid() is built in; older servers need pgcrypto).

CREATE TYPE customer_service_type AS ENUM ('pppoe', 'hotspot', 'static_ip');
CREATE TYPE customer_status AS ENUM ('active', 'suspended', 'inactive', 'pending');

CREATE TABLE customers (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    mikrotik_id         VARCHAR(50)  NOT NULL,
    username            VARCHAR(100) NOT NULL,
    name                VARCHAR(255) NOT NULL,
    phone               VARCHAR(32),
    email               VARCHAR(255),
    service_type        customer_service_type NOT NULL,
    pppoe_username      VARCHAR(100),
    pppoe_password      VARCHAR(255),
    pppoe_profile       VARCHAR(100),
    hotspot_username    VARCHAR(100),
    hotspot_password    VARCHAR(255),
    hotspot_mac_address MACADDR,
    static_ip           INET,
    assigned_ip         INET,
    mac_address         MACADDR,
    last_online         TIMESTAMP WITH TIME ZONE,
    status              customer_status NOT NULL DEFAULT 'inactive',
    created_at          TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at          TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    CONSTRAINT uq_customers_mikrotik_id_username UNIQUE (mikrotik_id, username),
    CONSTRAINT uq_customers_mikrotik_id_pppoe_username UNIQUE (mikrotik_id, pppoe_username),
    CONSTRAINT uq_customers_mikrotik_id_hotspot_username UNIQUE (mikrotik_id, hotspot_username)
);

CREATE INDEX ix_customers_mikrotik_id ON customers (mikrotik_id);
CREATE INDEX ix_customers_service_type ON customers (service_type);
CREATE INDEX ix_customers_status ON customers (status);
CREATE INDEX ix_customers_pppoe_username ON customers (pppoe_username);
CREATE INDEX ix_customers_hotspot_username ON customers (hotspot_username);
CREATE INDEX ix_customers_static_ip ON customers (static_ip);

CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER update_customers_updated_at BEFORE UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- Sample data (the seed's; runs unchanged on the Alembic-migrated schema):
-- INSERT INTO customers (mikrotik_id, username, name, service_type, pppoe_username, pppoe_password, status)
-- VALUES ('mikrotik-001', 'budi', 'Budi Santoso', 'pppoe', 'budi', 'secret123', 'active');
