#!/usr/bin/env python3
"""A local stand-in for a cloud DNS provider's API, for the tests: Alibaba Cloud DNS
(Alidns 2015-01-09, ACS3-HMAC-SHA256), DNSPod (Tencent Cloud API 3.0, TC3-HMAC-SHA256) or
Huawei Cloud DNS (v2 zones, v2.1 record sets, SDK-HMAC-SHA256).

Every request's signature is recomputed here from the provider's published algorithm with
Python's hmac and hashlib, the timestamp and the fields are judged as the provider does,
and the records are kept in memory. Usage:

    cloud_dns.py PROVIDER KEY_ID SECRET

It serves on 127.0.0.1 and prints its port. Besides the API, for the test itself:
GET /_fake/state gives {"records": [...], "writes": [...], "rejected": [...]}, and
POST /_fake/control takes {"fail": [[status, code], ...]} (the next API requests answered
with those errors), {"down": true|false} (503 to every API request), or {"add": record}
(a record made by someone else).
"""

import datetime
import hashlib
import hmac
import ipaddress
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROVIDER, KEY_ID, SECRET = sys.argv[1], sys.argv[2], sys.argv[3]
ZONE = "example.com"
LOCK = threading.Lock()
STATE = {"records": [], "writes": [], "rejected": [], "fail": [], "down": False, "next": 100}
NONCES = set()


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def mac(key, data):
    return hmac.new(key, data.encode(), hashlib.sha256).digest()


def quote(s):
    return urllib.parse.quote(s, safe="-_.~")


def canonical_query(raw):
    pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True)
    return "&".join(f"{k}={v}" for k, v in sorted((quote(k), quote(v)) for k, v in pairs))


def within(moment, seconds):
    return abs(time.time() - moment) <= seconds


def valid_value(kind, value):
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return (kind == "A" and ip.version == 4) or (kind == "AAAA" and ip.version == 6)


def new_id():
    STATE["next"] += 1
    return STATE["next"]


def find(name, kind, line=None):
    return [
        r for r in STATE["records"]
        if r["name"] == name and r["type"] == kind and (line is None or r.get("line") == line)
    ]


def by_id(rid):
    for r in STATE["records"]:
        if str(r["id"]) == str(rid):
            return r
    return None


# ---- Alibaba Cloud DNS ---------------------------------------------------------------------

def alidns_verify(req, body):
    auth = req.headers.get("Authorization", "")
    m = re.fullmatch(r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})", auth)
    if not m:
        raise ApiError(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
    key_id, signed, signature = m.groups()
    if key_id != KEY_ID:
        raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    names = signed.split(";")
    needed = {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"}
    acs = {h.lower() for h in req.headers.keys() if h.lower().startswith("x-acs-")}
    if names != sorted(names) or not (needed | acs) <= set(names):
        raise ApiError(400, "IncompleteSignature", f"Signed headers {signed} are incomplete.")
    if req.headers.get("x-acs-version") != "2015-01-09":
        raise ApiError(400, "InvalidVersion", "Specified parameter Version is not valid.")
    if req.headers.get("x-acs-content-sha256") != sha256(body):
        raise ApiError(400, "ContentSHA256NotMatched", "The content hash does not match.")
    try:
        date = datetime.datetime.strptime(req.headers.get("x-acs-date", ""), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise ApiError(400, "InvalidTimeStamp.Format", "Specified time stamp does not meet the format.")
    if not within(date.replace(tzinfo=datetime.timezone.utc).timestamp(), 900):
        raise ApiError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
    nonce = req.headers.get("x-acs-signature-nonce")
    if nonce in NONCES:
        raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
    NONCES.add(nonce)
    path, _, raw = req.path.partition("?")
    headers = "".join(f"{h}:{req.headers.get(h, '').strip()}\n" for h in names)
    canonical = "\n".join([req.command, path, canonical_query(raw), headers, signed, sha256(body)])
    to_sign = "ACS3-HMAC-SHA256\n" + sha256(canonical.encode())
    if not hmac.compare_digest(hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha256).hexdigest(), signature):
        raise ApiError(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
    return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))


def alidns_record(r):
    rr = r["name"][: -len(ZONE) - 1] if r["name"] != ZONE else "@"
    out = {"RecordId": str(r["id"]), "RR": rr, "DomainName": ZONE, "Type": r["type"], "Value": r["value"],
           "TTL": r["ttl"], "Line": r["line"], "Status": "ENABLE", "Locked": False}
    if r.get("remark"):
        out["Remark"] = r["remark"]
    return out


def alidns_fqdn(rr):
    return ZONE if rr == "@" else f"{rr}.{ZONE}"


def alidns_fields(p):
    for key in ("RR", "Type", "Value"):
        if not p.get(key):
            raise ApiError(400, "MissingParameter", f"{key} is mandatory for this action.")
    if not valid_value(p["Type"], p["Value"]):
        raise ApiError(400, "InvalidValue.Format", f"The value {p['Value']} does not match the type.")
    ttl = int(p.get("TTL", "600"))
    if not 1 <= ttl <= 86400:
        raise ApiError(400, "InvalidTTL", "Specified TTL is invalid.")
    return ttl


def alidns(req, body):
    p = alidns_verify(req, body)
    action = req.headers.get("x-acs-action")
    if action == "DescribeSubDomainRecords":
        sub = p.get("SubDomain", "")
        found = [r for r in STATE["records"] if r["name"] == sub
                 and r["type"] == p.get("Type", r["type"]) and r["line"] == p.get("Line", r["line"])]
        return {"TotalCount": len(found), "PageNumber": 1, "PageSize": 100,
                "DomainRecords": {"Record": [alidns_record(r) for r in found]}}
    if action == "AddDomainRecord":
        if p.get("DomainName") != ZONE:
            raise ApiError(400, "InvalidDomainName.NoExist", "The specified domain name does not exist.")
        ttl = alidns_fields(p)
        name, line = alidns_fqdn(p["RR"]), p.get("Line", "default")
        if any(r["value"] == p["Value"] for r in find(name, p["Type"], line)):
            raise ApiError(400, "DomainRecordDuplicate", "The DNS record already exists.")
        r = {"id": new_id(), "name": name, "type": p["Type"], "value": p["Value"], "ttl": ttl, "line": line}
        STATE["records"].append(r)
        STATE["writes"].append(f"create {p['Type']} {name} {p['Value']}")
        return {"RecordId": str(r["id"])}
    r = by_id(p.get("RecordId"))
    if action in ("UpdateDomainRecord", "UpdateDomainRecordRemark", "DeleteDomainRecord") and r is None:
        raise ApiError(400, "DomainRecordNotBelongToUser", "The DNS record does not belong to you.")
    if action == "UpdateDomainRecord":
        ttl = alidns_fields(p)
        if (r["value"], r["ttl"], r["line"]) == (p["Value"], ttl, p.get("Line", "default")):
            raise ApiError(400, "DomainRecordDuplicate", "The DNS record already exists.")
        r.update(name=alidns_fqdn(p["RR"]), type=p["Type"], value=p["Value"], ttl=ttl, line=p.get("Line", "default"))
        STATE["writes"].append(f"update {r['type']} {r['name']} {r['value']}")
        return {"RecordId": str(r["id"])}
    if action == "UpdateDomainRecordRemark":
        r["remark"] = p.get("Remark", "")
        STATE["writes"].append(f"remark {r['name']} {r['remark']}")
        return {}
    if action == "DeleteDomainRecord":
        STATE["records"].remove(r)
        STATE["writes"].append(f"delete {r['name']}")
        return {"RecordId": str(r["id"])}
    raise ApiError(404, "InvalidAction.NotFound", f"Specified api {action} is not found.")


def alidns_error(e):
    return e.status, {"RequestId": "FAKE", "Code": e.code, "Message": e.message, "HostId": "alidns.aliyuncs.com"}


# ---- DNSPod ----------------------------------------------------------------------------------

def dnspod_verify(req, body):
    auth = req.headers.get("Authorization", "")
    m = re.fullmatch(r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([a-z]+)/tc3_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
    if not m:
        raise ApiError(200, "AuthFailure.InvalidAuthorization", "Authorization is not a valid TC3 header.")
    secret_id, date, service, signed, signature = m.groups()
    if secret_id != KEY_ID:
        raise ApiError(200, "AuthFailure.SecretIdNotFound", "The SecretId is not found.")
    if req.headers.get("X-TC-Version") != "2021-03-23":
        raise ApiError(200, "InvalidParameter", "The version is not supported.")
    stamp = int(req.headers.get("X-TC-Timestamp", "0"))
    if not within(stamp, 300):
        raise ApiError(200, "AuthFailure.SignatureExpire", "The signature has expired.")
    day = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime("%Y-%m-%d")
    names = signed.split(";")
    if service != "dnspod" or date != day or not {"content-type", "host"} <= set(names):
        raise ApiError(200, "AuthFailure.SignatureFailure", "The credential scope or signed headers are wrong.")
    headers = "".join(f"{h}:{req.headers.get(h, '').strip().lower()}\n" for h in names)
    path, _, raw = req.path.partition("?")
    canonical = "\n".join([req.command, path, raw, headers, signed, sha256(body)])
    to_sign = f"TC3-HMAC-SHA256\n{stamp}\n{date}/{service}/tc3_request\n{sha256(canonical.encode())}"
    key = mac(mac(mac(("TC3" + SECRET).encode(), date), service), "tc3_request")
    if not hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature):
        raise ApiError(200, "AuthFailure.SignatureFailure", "The provided credentials could not be validated.")
    return json.loads(body or b"{}")


def dnspod_fields(p, create):
    for key in ("Domain", "RecordType", "RecordLine", "Value") + (() if create else ("RecordId",)):
        if key not in p:
            raise ApiError(200, "MissingParameter", f"The parameter {key} is missing.")
    if p["Domain"] != ZONE:
        raise ApiError(200, "ResourceNotFound.NoDataOfDomain", "The domain does not exist.")
    if not valid_value(p["RecordType"], p["Value"]):
        raise ApiError(200, "InvalidParameter.RecordValueInvalid", "The record value is invalid.")
    if not isinstance(p.get("TTL", 600), int) or not 1 <= p.get("TTL", 600) <= 604800:
        raise ApiError(200, "InvalidParameter.InvalidTTL", "The TTL is invalid.")
    if len(p.get("Remark", "")) > 200:
        raise ApiError(200, "InvalidParameter.RemarkLengthExceeded", "The remark is too long.")
    sub = p.get("SubDomain", "@")
    return ZONE if sub == "@" else f"{sub}.{ZONE}"


def dnspod(req, body):
    p = dnspod_verify(req, body)
    action = req.headers.get("X-TC-Action")
    if action == "DescribeRecordList":
        sub = p.get("Subdomain")
        found = [r for r in STATE["records"]
                 if (sub is None or r["name"] == (ZONE if sub == "@" else f"{sub}.{ZONE}"))
                 and r["type"] == p.get("RecordType", r["type"]) and r["line"] == p.get("RecordLine", r["line"])]
        if not found:
            raise ApiError(200, "ResourceNotFound.NoDataOfRecord", "记录列表为空。")
        return {"RecordCountInfo": {"TotalCount": len(found)}, "RecordList": [
            {"RecordId": r["id"], "Name": r["name"][: -len(ZONE) - 1] if r["name"] != ZONE else "@",
             "Type": r["type"], "Value": r["value"], "Line": r["line"], "TTL": r["ttl"],
             "Remark": r.get("remark", ""), "Status": "ENABLE"} for r in found]}
    if action == "CreateRecord":
        name = dnspod_fields(p, True)
        r = {"id": new_id(), "name": name, "type": p["RecordType"], "value": p["Value"],
             "ttl": p.get("TTL", 600), "line": p["RecordLine"], "remark": p.get("Remark", "")}
        STATE["records"].append(r)
        STATE["writes"].append(f"create {r['type']} {name} {r['value']}")
        return {"RecordId": r["id"]}
    if action == "ModifyRecord":
        name = dnspod_fields(p, False)
        if not isinstance(p["RecordId"], int):
            raise ApiError(200, "InvalidParameter.RecordIdInvalid", "The record id is invalid.")
        r = by_id(p["RecordId"])
        if r is None:
            raise ApiError(200, "InvalidParameter.RecordIdInvalid", "The record id is invalid.")
        r.update(name=name, type=p["RecordType"], value=p["Value"], ttl=p.get("TTL", 600),
                 line=p["RecordLine"], remark=p.get("Remark", r.get("remark", "")))
        STATE["writes"].append(f"update {r['type']} {name} {r['value']}")
        return {"RecordId": r["id"]}
    raise ApiError(200, "InvalidAction", f"The action {action} does not exist.")


def dnspod_error(e):
    status = e.status if e.status != 200 else 200
    return status, {"Response": {"Error": {"Code": e.code, "Message": e.message}, "RequestId": "fake"}}


# ---- Huawei Cloud DNS ------------------------------------------------------------------------

ZONE_ID = "ff8080826c2a4bde016c2e7b8b6f0c13"


def huawei_verify(req, body):
    auth = req.headers.get("Authorization", "")
    m = re.fullmatch(r"SDK-HMAC-SHA256 Access=([^,]+), SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
    if not m:
        raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: Authorization format")
    access, signed, signature = m.groups()
    if access != KEY_ID:
        raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: ak not found")
    try:
        date = datetime.datetime.strptime(req.headers.get("X-Sdk-Date", ""), "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: x-sdk-date format")
    if not within(date.replace(tzinfo=datetime.timezone.utc).timestamp(), 900):
        raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: request expired")
    names = signed.split(";")
    if names != sorted(names) or not {"host", "x-sdk-date"} <= set(names):
        raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: signed headers")
    path, _, raw = req.path.partition("?")
    uri = "/".join(quote(urllib.parse.unquote(s)) for s in path.split("/"))
    if not uri.endswith("/"):
        uri += "/"
    headers = "".join(f"{h}:{req.headers.get(h, '').strip()}\n" for h in names)
    canonical = "\n".join([req.command, uri, canonical_query(raw), headers, signed, sha256(body)])
    to_sign = f"SDK-HMAC-SHA256\n{req.headers.get('X-Sdk-Date')}\n{sha256(canonical.encode())}"
    if not hmac.compare_digest(hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha256).hexdigest(), signature):
        raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail")
    return path, dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))


def huawei_set(r):
    return {"id": str(r["id"]), "name": r["name"] + ".", "type": r["type"], "ttl": r["ttl"],
            "records": r["values"], "description": r.get("remark", ""), "zone_id": ZONE_ID,
            "zone_name": ZONE + ".", "status": "ACTIVE"}


def huawei_fields(body):
    try:
        p = json.loads(body)
    except ValueError:
        raise ApiError(400, "DNS.0303", "The request body is not valid JSON.")
    name, kind, values = p.get("name", ""), p.get("type"), p.get("records")
    if not name.endswith(".") or not (name[:-1] == ZONE or name[:-1].endswith("." + ZONE)):
        raise ApiError(400, "DNS.0308", "The record set name is invalid.")
    if kind not in ("A", "AAAA") or not values or not all(valid_value(kind, v) for v in values):
        raise ApiError(400, "DNS.0307", "The record value is invalid.")
    if not 1 <= p.get("ttl", 300) <= 2147483647:
        raise ApiError(400, "DNS.0309", "The TTL is invalid.")
    if len(p.get("description", "")) > 255:
        raise ApiError(400, "DNS.0310", "The description is too long.")
    return name[:-1], kind, values, p.get("ttl", 300), p.get("description", "")


def huawei(req, body):
    path, q = huawei_verify(req, body)
    if req.command == "GET" and path == "/v2/zones":
        zones = [{"id": ZONE_ID, "name": ZONE + "."}, {"id": "decoy", "name": "not" + ZONE + "."}]
        # The name filter is loose, as the API's is: every zone whose name contains it.
        zones = [z for z in zones if q.get("name", "") in z["name"]]
        return 200, {"zones": zones, "metadata": {"total_count": len(zones)}}
    m = re.fullmatch(r"/v2\.1/zones/([^/]+)/recordsets(?:/([^/]+))?", path)
    if not m or m.group(1) != ZONE_ID:
        raise ApiError(404, "DNS.0101", "The zone does not exist.")
    rid = m.group(2)
    if req.command == "GET" and rid is None:
        if q.get("search_mode") != "equal":
            raise ApiError(400, "DNS.0303", "This fake expects search_mode=equal.")
        name = q.get("name", "").rstrip(".")
        found = [r for r in STATE["records"] if r["name"] == name and r["type"] == q.get("type", r["type"])]
        return 200, {"recordsets": [huawei_set(r) for r in found], "metadata": {"total_count": len(found)}}
    if req.command == "POST" and rid is None:
        name, kind, values, ttl, remark = huawei_fields(body)
        if find(name, kind):
            raise ApiError(400, "DNS.0312", "A record set of this name and type already exists.")
        r = {"id": "rs" + str(new_id()), "name": name, "type": kind, "values": values, "ttl": ttl, "remark": remark}
        STATE["records"].append(r)
        STATE["writes"].append(f"create {kind} {name} {' '.join(values)}")
        return 202, dict(huawei_set(r), status="PENDING_CREATE")
    if req.command == "PUT" and rid is not None:
        r = by_id(rid)
        if r is None:
            raise ApiError(404, "DNS.0304", "The record set does not exist.")
        name, kind, values, ttl, remark = huawei_fields(body)
        r.update(name=name, type=kind, values=values, ttl=ttl, remark=remark)
        STATE["writes"].append(f"update {kind} {name} {' '.join(values)}")
        return 202, dict(huawei_set(r), status="PENDING_UPDATE")
    raise ApiError(404, "APIGW.0101", "The API does not exist or has not been published.")


def huawei_error(e):
    if e.code.startswith("APIGW"):
        return e.status, {"error_code": e.code, "error_msg": e.message, "request_id": "fake"}
    return e.status, {"code": e.code, "message": e.message}


# ---- serving ---------------------------------------------------------------------------------

APIS = {"alidns": (alidns, alidns_error), "dnspod": (dnspod, dnspod_error), "huaweicloud": (huawei, huawei_error)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, value):
        data = json.dumps(value, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with LOCK:
            if self.path == "/_fake/state":
                return self.reply(200, {k: STATE[k] for k in ("records", "writes", "rejected")})
            if self.path == "/_fake/control":
                c = json.loads(body)
                STATE["fail"].extend(c.get("fail", []))
                STATE["down"] = c.get("down", STATE["down"])
                if "add" in c:
                    STATE["records"].append(dict(c["add"], id=c["add"].get("id", new_id())))
                return self.reply(200, {})
            api, error = APIS[PROVIDER]
            try:
                if STATE["down"]:
                    raise ApiError(503, "ServiceUnavailable", "The service is down.")
                if STATE["fail"]:
                    status, code = STATE["fail"].pop(0)
                    raise ApiError(status, code, "Injected failure.")
                result = api(self, body)
            except ApiError as e:
                STATE["rejected"].append(f"{e.code}: {e.message}")
                return self.reply(*error(e))
            if PROVIDER == "huaweicloud":
                return self.reply(*result)
            if PROVIDER == "dnspod":
                return self.reply(200, {"Response": dict(result, RequestId="fake")})
            return self.reply(200, dict(result, RequestId="FAKE"))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
