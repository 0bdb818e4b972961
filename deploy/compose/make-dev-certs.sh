#!/usr/bin/env bash
# Development TLS for the compose stack: a throw-away CA and Keycloak's server certificate
# (names keycloak and localhost). The services verify tokens against Keycloak's JWKS only over
# https, so compose needs these before `docker compose up`. Never use them outside a laptop.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p certs
cd certs
[[ -f keycloak.crt ]] && { echo "certs/ exists; delete it to make new certificates"; exit 0; }
openssl req -x509 -newkey rsa:3072 -nodes -days 365 -subj "/CN=rcm development CA" \
    -keyout ca.key -out ca.crt
openssl req -newkey rsa:3072 -nodes -subj "/CN=keycloak" -keyout keycloak.key -out keycloak.csr
printf 'subjectAltName=DNS:keycloak,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > san.ext
openssl x509 -req -in keycloak.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
    -extfile san.ext -out keycloak.crt
rm -f keycloak.csr san.ext ca.srl
# Keycloak's container runs as uid 1000: it must read the key (development only).
chmod 0644 ca.crt keycloak.crt keycloak.key
chmod 0600 ca.key
echo "certs/ca.crt, certs/keycloak.crt, certs/keycloak.key written"
