#!/usr/bin/env python3
"""A tiny bearer-token server for the test registry on 127.0.0.1:5002 (Python 3.11 stdlib only).

It speaks the Docker registry token protocol: GET /token?service=..&scope=.. with optional basic
auth, and the OAuth2 form POST /token (grant_type=password or grant_type=refresh_token). Tokens are
RS256 JWTs signed with `openssl dgst`, carrying the signing certificate in `x5c` so the registry
(`auth: token: rootcertbundle:`) can verify them.

Rules, chosen so tests can tell the flows apart:
  * right user/password, or refresh token REFRESH_TOKEN  -> the requested pull/push access;
  * no credentials                                       -> a token with no access (registry says 401);
  * wrong credentials                                    -> 401 from this server.
"""

import argparse
import base64
import json
import secrets
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REFRESH_TOKEN = "longshore-refresh-token"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der_b64(pem_path: str) -> str:
    der = subprocess.run(
        ["openssl", "x509", "-in", pem_path, "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return base64.b64encode(der).decode()


class TokenIssuer:
    def __init__(self, key: str, cert: str, issuer: str, service: str):
        self.key = key
        self.x5c = cert_der_b64(cert)
        self.issuer = issuer
        self.service = service

    def sign(self, subject: str, access: list) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.key],
            input=signing_input.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return signing_input + "." + b64url(sig)


def parse_scopes(scopes: list) -> list:
    access = []
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) < 3:
            continue
        kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
        access.append({"type": kind, "name": name, "actions": actions.split(",")})
    return access


class Handler(BaseHTTPRequestHandler):
    issuer: TokenIssuer
    user: str
    password: str

    def log_message(self, fmt, *args):
        sys.stderr.write("token-server: " + (fmt % args) + "\n")

    def reply(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def basic_credentials(self):
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return ("", "")
        return (user, password)

    def grant(self, authorized: bool, subject: str, scopes: list):
        access = parse_scopes(scopes) if authorized else []
        token = self.issuer.sign(subject, access)
        self.reply(200, {"token": token, "access_token": token, "expires_in": 300,
                         "refresh_token": REFRESH_TOKEN if authorized else None})

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        query = urllib.parse.parse_qs(url.query)
        creds = self.basic_credentials()
        if creds is not None and creds != (self.user, self.password):
            return self.reply(401, {"error": "wrong user name or password"})
        self.grant(creds is not None, creds[0] if creds else "", query.get("scope", []))

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        grant_type = form.get("grant_type", [""])[0]
        scopes = " ".join(form.get("scope", [])).split()
        if grant_type == "refresh_token":
            ok = form.get("refresh_token", [""])[0] == REFRESH_TOKEN
        elif grant_type == "password":
            ok = (form.get("username", [""])[0], form.get("password", [""])[0]) == (self.user, self.password)
        else:
            return self.reply(400, {"error": "unsupported_grant_type"})
        if not ok:
            return self.reply(401, {"error": "invalid_grant"})
        self.grant(True, form.get("username", ["refresh"])[0], scopes)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=5003)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    args = ap.parse_args()
    Handler.issuer = TokenIssuer(args.key, args.cert, args.issuer, args.service)
    Handler.user = args.user
    Handler.password = args.password
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
