#!/usr/bin/env bash
# Start Longshore's test registries on loopback, storage and logs under one directory.
#
#   tests/registry/start.sh [DIR]        (DIR defaults to $LONGSHORE_REGISTRY_DIR or /tmp/longshore-registry)
#
#   127.0.0.1:5000  plain HTTP, anonymous: the registry the images are pushed to
#   127.0.0.1:5001  plain HTTP, htpasswd basic auth (user longshore / password longshore-pass)
#   127.0.0.1:5002  HTTPS with a self-signed CA (DIR/tls/ca.pem), bearer-token auth
#   127.0.0.1:5003  the token server for 5002 (tests/registry/token_server.py); same user and password
#
# All four share one storage, so an image pushed to :5000 can be pulled from each.
# Logs (access logs included) go to DIR/<port>.log; tests count blob fetches there.
# Stop them with tests/registry/stop.sh [DIR]. Starting twice is harmless: a live registry is kept.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${1:-${LONGSHORE_REGISTRY_DIR:-/tmp/longshore-registry}}"
REGISTRY_BIN="${REGISTRY_BIN:-/usr/bin/docker-registry}"
USER_NAME="longshore"
USER_PASS="longshore-pass"

mkdir -p "$DIR/storage" "$DIR/auth" "$DIR/tls"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_port() { # wait_port PORT: until something accepts on 127.0.0.1:PORT
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1; see $DIR/$1.log" >&2
  return 1
}

# One bcrypt line for the htpasswd file; the registry accepts only bcrypt.
make_htpasswd() {
  if command -v htpasswd >/dev/null; then
    htpasswd -Bbn "$USER_NAME" "$USER_PASS" >"$DIR/auth/htpasswd"
  else
    python3 -W ignore -c 'import crypt,sys
print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5)))' \
      "$USER_NAME" "$USER_PASS" >"$DIR/auth/htpasswd"
  fi
}

# A CA, a server certificate for 127.0.0.1 signed by it (for :5002's TLS) and a token-signing key
# whose self-signed certificate the registry trusts.
make_tls() {
  [ -f "$DIR/tls/server.pem" ] && return 0
  (
    cd "$DIR/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=longshore test CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.pem 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=longshore token signer" \
      -keyout token.key -out token.pem 2>/dev/null
  )
}

write_config() { # write_config PORT AUTH-YAML TLS-YAML
  cat >"$DIR/config-$1.yml" <<YAML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
  fields:
    service: registry-$1
storage:
  filesystem:
    rootdirectory: $DIR/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$1
  secret: longshore-test-secret
$3
$2
YAML
}

start_registry() { # start_registry PORT
  local pidfile="$DIR/registry-$1.pid"
  if alive "$pidfile"; then return 0; fi
  setsid "$REGISTRY_BIN" serve "$DIR/config-$1.yml" >>"$DIR/$1.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_port "$1"
}

make_htpasswd
make_tls

write_config 5000 "" ""
write_config 5001 "auth:
  htpasswd:
    realm: longshore-basic
    path: $DIR/auth/htpasswd" ""
write_config 5002 "auth:
  token:
    realm: http://127.0.0.1:5003/token
    service: longshore-registry
    issuer: longshore-token-server
    rootcertbundle: $DIR/tls/token.pem" "  tls:
    certificate: $DIR/tls/server.pem
    key: $DIR/tls/server.key"

start_registry 5000
start_registry 5001
start_registry 5002

if ! alive "$DIR/token-5003.pid"; then
  setsid python3 "$HERE/token_server.py" --port 5003 --key "$DIR/tls/token.key" --cert "$DIR/tls/token.pem" \
    --issuer longshore-token-server --service longshore-registry \
    --user "$USER_NAME" --password "$USER_PASS" >>"$DIR/5003.log" 2>&1 </dev/null &
  echo $! >"$DIR/token-5003.pid"
  wait_port 5003
fi

echo "registries up: 127.0.0.1:5000 (anonymous), :5001 (basic), :5002 (TLS + token via :5003); dir $DIR"
