#!/bin/sh
# spec/certs.sh DIR: makes the certificates the TLS specs use, with the
# openssl command, in DIR (EC P-256 keys: quick to make):
#   ca.pem, ca.key            a private CA
#   server.pem, server.key    for localhost, 127.0.0.1 and ::1, from the CA
#   chain.pem                 server.pem then ca.pem
#   expired.pem, expired.key  the same names, expired in 2020
#   wronghost.pem/.key        for other.example only
#   selfsigned.pem/.key       for localhost, signed by itself (unknown CA)
#   client.pem, client.key    a client certificate from the CA
#   other-ca.pem              a CA nobody used
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
cat >ca.cnf <<'EOF'
[ca]
default_ca = CA
[CA]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[server]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $ENV::SAN
[client]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
: >index.txt
echo 1000 >serial
export SAN="DNS:localhost"
key ca.key
openssl req -x509 -new -key ca.key -subj "/CN=casync test CA" -days 30 \
  -config ca.cnf -extensions v3_ca -out ca.pem 2>/dev/null
key other-ca.key
openssl req -x509 -new -key other-ca.key -subj "/CN=another CA" -days 30 \
  -config ca.cnf -extensions v3_ca -out other-ca.pem 2>/dev/null
# issue NAME CN SAN EXT [START END]
issue() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -config ca.cnf -out "$1.csr" 2>/dev/null
  SAN=$3
  export SAN
  if [ $# -gt 4 ]; then
    dates="-startdate $5 -enddate $6"
  else
    dates="-days 30"
  fi
  # shellcheck disable=SC2086
  openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -extensions "$4" \
    $dates -in "$1.csr" -out "$1.pem" -notext 2>/dev/null
}
issue server localhost "DNS:localhost,IP:127.0.0.1,IP:::1" server
issue expired localhost "DNS:localhost,IP:127.0.0.1,IP:::1" server \
  20200101000000Z 20200201000000Z
issue wronghost other.example "DNS:other.example" server
issue client "casync client" "DNS:client" client
cat server.pem ca.pem >chain.pem
key selfsigned.key
openssl req -x509 -new -key selfsigned.key -subj "/CN=localhost" -days 30 \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out selfsigned.pem 2>/dev/null
