"""A token service for the registry's bearer-token auth (the distribution registry's token spec).

Usage: /usr/bin/python3 token_server.py PORT CERT_PEM USER PASSWORD

Makes an RSA key and a self-signed certificate, writes the certificate to CERT_PEM (the
registry's rootcertbundle), then answers GET /token?service=S&scope=repository:NAME:ACTIONS with
{"token": JWT} for HTTP basic credentials USER:PASSWORD (401 otherwise), granting the actions the
scope asks for. Runs until killed. Needs Debian's python3-jwt and python3-cryptography.
"""
import base64
import datetime
import http.server
import json
import sys
import urllib.parse
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ISSUER = "prewarm-test-issuer"


def make_key_and_cert(path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prewarm test token issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def access_of(scopes):
    """repository:NAME:a,b scopes as the token's access claim."""
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind and name:
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
    return access


def main():
    port, cert_path, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    key, cert_der = make_key_and_cert(cert_path)
    expected = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            query = urllib.parse.parse_qs(url.query)
            if url.path != "/token":
                self.send_error(404)
                return
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}')
                return
            now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
            claims = {"iss": ISSUER, "sub": user, "aud": query.get("service", [""])[0], "iat": now, "nbf": now - 10,
                      "exp": now + 300, "jti": str(uuid.uuid4()), "access": access_of(query.get("scope", []))}
            token = jwt.encode(claims, key, algorithm="RS256", headers={"x5c": [cert_der]})
            body = json.dumps({"token": token, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
