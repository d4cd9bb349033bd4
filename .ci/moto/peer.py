"""The tests' AWS peer: moto's own server app (moto[server] 5.2.5, from PyPI), plus

1. the Glue and Athena operations moto 5.2.5 leaves unimplemented (UpdateCrawler,
   UpdateWorkGroup, UpdateNamedQuery, DeleteNamedQuery, BatchGetNamedQuery) and a
   DeleteWorkGroup that honours RecursiveDeleteOption, each with AWS's documented semantics, so
   updates, drift repair and cleanup can be tested at all;
2. fault injection: errors in AWS's wire format for the next N calls of an action, to test
   throttling and backoff (moto has none).

scripts/test.sh starts it; tests reach it at TICKLAKE_TEST_AWS_ENDPOINT.

    python peer.py -p 15001
    POST /_ticklake/faults {"service":"glue","action":"CreateCrawler","count":3}
    GET  /_ticklake/faults          -> remaining faults + hit counters
    DELETE /_ticklake/faults        -> clear
"""
import argparse, json, threading, uuid

from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.athena.responses import AthenaResponse
from moto.athena.exceptions import InvalidArgumentException
from moto.glue.responses import GlueResponse
from moto.glue.exceptions import EntityNotFoundException
from moto.core.responses import EmptyResult

# ---------------------------------------------------------------- gap fillers
def _update_crawler(self):
    p = self.parameters
    c = self.glue_backend.get_crawler(p["Name"])  # raises EntityNotFoundException
    for key, attr in [("Role", "role"), ("DatabaseName", "database_name"), ("Description", "description"),
                      ("Targets", "targets"), ("Schedule", "schedule"), ("Classifiers", "classifiers"),
                      ("TablePrefix", "table_prefix"), ("SchemaChangePolicy", "schema_change_policy"),
                      ("RecrawlPolicy", "recrawl_policy"), ("LineageConfiguration", "lineage_configuration"),
                      ("Configuration", "configuration"), ("CrawlerSecurityConfiguration", "crawler_security_configuration")]:
        if key in p:
            setattr(c, attr, p[key] or None)
    c.version += 1
    from moto.core.utils import utcnow
    c.last_updated = utcnow()
    return EmptyResult()

GlueResponse.update_crawler = _update_crawler


def _named(self, qid):
    nq = self.athena_backend.named_queries.get(qid)
    if nq is None:
        raise InvalidArgumentException(f"NamedQuery {qid} was not found")  # AWS: InvalidRequestException
    return nq

def _nq_dict(nq):
    return {"Name": nq.name, "Description": nq.description, "Database": nq.database,
            "QueryString": nq.query_string, "NamedQueryId": nq.id, "WorkGroup": nq.workgroup.name}

def _delete_named_query(self):
    _named(self, self._get_param("NamedQueryId"))
    self.athena_backend.named_queries.pop(self._get_param("NamedQueryId"))
    return "{}"

def _update_named_query(self):
    nq = _named(self, self._get_param("NamedQueryId"))
    nq.name = self._get_param("Name")
    nq.description = self._get_param("Description")
    nq.query_string = self._get_param("QueryString")
    return "{}"

def _batch_get_named_query(self):
    found, missing = [], []
    for qid in self._get_param("NamedQueryIds"):
        nq = self.athena_backend.named_queries.get(qid)
        if nq is None:
            missing.append({"NamedQueryId": qid, "ErrorCode": "INVALID_INPUT", "ErrorMessage": "not found"})
        else:
            found.append(_nq_dict(nq))
    return json.dumps({"NamedQueries": found, "UnprocessedNamedQueryIds": missing})

def _update_work_group(self):
    name = self._get_param("WorkGroup")
    wg = self.athena_backend.work_groups.get(name)
    if wg is None:
        raise InvalidArgumentException(f"WorkGroup {name} is not found.")
    if self._get_param("Description") is not None:
        wg.description = self._get_param("Description")
    if self._get_param("State"):
        wg.state = self._get_param("State")
    upd = self._get_param("ConfigurationUpdates") or {}
    cfg = wg.configuration
    for k in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled", "BytesScannedCutoffPerQuery",
              "RequesterPaysEnabled", "EngineVersion"):
        if k in upd:
            cfg[k] = upd[k]
    if upd.get("RemoveBytesScannedCutoffPerQuery"):
        cfg.pop("BytesScannedCutoffPerQuery", None)
    rc = upd.get("ResultConfigurationUpdates")
    if rc:
        cur = cfg.setdefault("ResultConfiguration", {})
        for k in ("OutputLocation", "EncryptionConfiguration", "ExpectedBucketOwner", "AclConfiguration"):
            if k in rc:
                cur[k] = rc[k]
            if rc.get("Remove" + k):
                cur.pop(k, None)
    return "{}"

def _delete_work_group(self):
    # AWS: deleting a workgroup that still has named queries needs RecursiveDeleteOption; recursive
    # deletion removes its named queries too. moto 5.2.5 ignores both.
    name = self._get_param("WorkGroup")
    be = self.athena_backend
    if name in be.work_groups:
        nqs = [q for q, nq in be.named_queries.items() if nq.workgroup.name == name]
        if nqs and not self._get_param("RecursiveDeleteOption"):
            raise InvalidArgumentException("WorkGroup is not empty")
        for q in nqs:
            be.named_queries.pop(q)
    be.work_groups.pop(name, None)
    return "{}"

AthenaResponse.delete_named_query = _delete_named_query
AthenaResponse.update_named_query = _update_named_query
AthenaResponse.batch_get_named_query = _batch_get_named_query
AthenaResponse.update_work_group = _update_work_group
AthenaResponse.delete_work_group = _delete_work_group

# ---------------------------------------------------------------- fault injection
_lock = threading.Lock()
_faults = []   # dicts: service, action, count, status, code, message
_hits = {}

def _service_action(environ, body):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = ""
    try:
        service = auth.split(",")[0].split()[1].split("/")[3]
    except IndexError:
        pass
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:                       # awsJson: "AWSGlue.CreateCrawler", "AmazonAthena.CreateWorkGroup"
        return service, target.split(".", 1)[1]
    if service in ("sns", "sqs") or b"Action=" in body:   # awsQuery: form body Action=Subscribe
        from urllib.parse import parse_qs
        return service, parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    return service, environ.get("REQUEST_METHOD", "")   # s3 (restXml): method only

def _error_response(service, f):
    code, msg, status = f.get("code"), f.get("message", "Rate exceeded"), f.get("status", 400)
    rid = str(uuid.uuid4())
    if service == "sns":
        code = code or "Throttled"
        body = (f'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
                f'<Code>{code}</Code><Message>{msg}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>')
        return Response(body, status=status, content_type="text/xml", headers={"x-amzn-RequestId": rid})
    if service == "s3":
        code = code or "SlowDown"
        body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{msg}</Message><RequestId>{rid}</RequestId></Error>'
        return Response(body, status=f.get("status", 503), content_type="application/xml")
    code = code or "ThrottlingException"
    return Response(json.dumps({"__type": code, "message": msg}), status=status,
                    content_type="application/x-amz-json-1.1",
                    headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.glue/",
                             "x-amzn-RequestId": rid})

class FaultMiddleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_ticklake/faults":
            req = Request(environ)
            with _lock:
                if req.method == "POST":
                    _faults.append(json.loads(req.get_data()))
                elif req.method == "DELETE":
                    _faults.clear(); _hits.clear()
                out = {"faults": list(_faults), "hits": dict(_hits)}
            return Response(json.dumps(out), content_type="application/json")(environ, start_response)
        # buffer the body so both we and moto can read it
        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n) if n else b""
        import io
        environ["wsgi.input"] = io.BytesIO(body)
        service, action = _service_action(environ, body)
        with _lock:
            for f in _faults:
                if f.get("service") in (None, service) and f.get("action") in (None, action) and f["count"] > 0:
                    f["count"] -= 1
                    key = f"{service}.{action}"
                    _hits[key] = _hits.get(key, 0) + 1
                    if f["count"] == 0:
                        _faults.remove(f)
                    return _error_response(service, f)(environ, start_response)
        return self.app(environ, start_response)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=5000)
    a = ap.parse_args()
    import os
    os.environ.setdefault("MOTO_PORT", str(a.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(a.host, a.port, FaultMiddleware(app), threaded=True, request_handler=MotoRequestHandler)
