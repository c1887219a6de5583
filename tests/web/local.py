"""Where in-process test clients say they are.

Starlette's TestClient names its host `testserver`; the app serves only loopback, its
own address and TRUSTED_HOSTS (web/hosts.py), so in-process clients call it by a
loopback address, as an operator's browser on the same machine would.
"""

LOCAL_URL = "http://127.0.0.1"
