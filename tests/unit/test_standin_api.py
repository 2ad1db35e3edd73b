"""The stand-in API server's behaviour as the real server's, asked over HTTPS.

dryRun on every write, limit/continue, JSON patch, defaulting, the scale and eviction
subresources, reviews, impersonation, the default roles, protobuf answers and watches, and
the encodings it refuses.
"""

from __future__ import annotations

import http.client
import json
import struct
from collections.abc import Iterator

import pytest

from kube_standin import protobuf
from standin_cluster import Cluster, running_cluster

NS = "/api/v1/namespaces/api-test"
APPS = "/apis/apps/v1/namespaces/api-test"
PROTO = "application/vnd.kubernetes.protobuf"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("api")) as c:
        assert c.request("POST", "/api/v1/namespaces", {"metadata": {"name": "api-test"}})[
            0] == 201
        yield c


def raw(cluster: Cluster, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", cluster.port, context=cluster.context(),
                                       timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type", ""), data


DEPLOYMENT = {"metadata": {"name": "web"}, "spec": {
    "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
        {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
         "readinessProbe": {"httpGet": {"port": 80}}}]}}}}


def test_dry_run_on_every_write_stores_nothing(cluster: Cluster) -> None:
    status, made = cluster.request("POST", f"{APPS}/deployments?dryRun=All", DEPLOYMENT)
    assert status == 201 and made["metadata"]["uid"] and "resourceVersion" not in made["metadata"]
    assert made["spec"]["strategy"]["type"] == "RollingUpdate"  # defaults are applied
    assert cluster.request("GET", f"{APPS}/deployments/web")[0] == 404
    assert cluster.request("POST", f"{APPS}/deployments", DEPLOYMENT)[0] == 201
    before = cluster.request("GET", f"{APPS}/deployments/web")[1]
    for method, body, ctype in (
            ("PATCH", {"spec": {"replicas": 5}}, "application/merge-patch+json"),
            ("PATCH", {"spec": {"replicas": 5}}, "application/strategic-merge-patch+json"),
            ("PATCH", [{"op": "replace", "path": "/spec/replicas", "value": 5}],
             "application/json-patch+json"),
            ("PUT", None, "application/json")):
        if method == "PUT":  # the controllers write status: read the latest version
            live = cluster.request("GET", f"{APPS}/deployments/web")[1]
            body = {**live, "spec": {**live["spec"], "replicas": 5}}
        status, out = cluster.request(method, f"{APPS}/deployments/web?dryRun=All", body,
                                      content_type=ctype)
        assert status == 200 and out["spec"]["replicas"] == 5, (ctype, out)
    status, _ = cluster.request("DELETE", f"{APPS}/deployments/web?dryRun=All")
    assert status == 200
    after = cluster.request("GET", f"{APPS}/deployments/web")[1]
    assert after["spec"]["replicas"] == 1
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"] or \
        after["metadata"]["generation"] == before["metadata"]["generation"]
    status, err = cluster.request("POST", f"{APPS}/deployments?dryRun=Everything", DEPLOYMENT)
    assert status == 400 and "dryRun" in err["message"]


def test_defaults_of_pods_services_and_workloads(cluster: Cluster) -> None:
    status, ds = cluster.request("POST", f"{APPS}/daemonsets", {
        "metadata": {"name": "agent"}, "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                         "spec": {"containers": [{"name": "a", "image": "agent"}]}}}})
    assert status == 201
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10
    container = ds["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Always"  # no tag: latest
    assert container["terminationMessagePolicy"] == "File"
    dep = cluster.request("GET", f"{APPS}/deployments/web")[1]
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": "25%",
                                                        "maxSurge": "25%"}
    assert dep["spec"]["progressDeadlineSeconds"] == 600
    probe = dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                     "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"
    status, svc = cluster.request("POST", f"{NS}/services", {
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}})
    assert status == 201
    spec = svc["spec"]
    assert spec["clusterIP"].startswith("10.96.") and spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ports"][0]["targetPort"] == 80 and spec["ports"][0]["protocol"] == "TCP"
    assert 30000 <= spec["ports"][0]["nodePort"] <= 32767
    assert (spec["sessionAffinity"], spec["externalTrafficPolicy"], spec["ipFamilies"]) == (
        "None", "Cluster", ["IPv4"])
    status, pod = cluster.request("POST", f"{NS}/pods", {
        "metadata": {"name": "bare"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}})
    assert status == 201
    assert pod["spec"]["serviceAccountName"] == "default"
    assert pod["spec"]["enableServiceLinks"] is True and pod["spec"]["priority"] == 0
    assert {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 300} in pod["spec"]["tolerations"]
    assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"])
    assert pod["status"]["qosClass"] == "BestEffort"


def test_invalid_objects_get_the_real_wording(cluster: Cluster) -> None:
    bad = json.loads(json.dumps(DEPLOYMENT))
    bad["metadata"]["name"] = "Bad_Name"
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    status, err = cluster.request("POST", f"{APPS}/deployments", bad)
    assert status == 422 and err["reason"] == "Invalid"
    assert 'Deployment "Bad_Name" is invalid' in err["message"]
    assert "metadata.name" in err["message"] and "selector` does not match" in err["message"]
    status, err = cluster.request("PATCH", f"{APPS}/deployments/web", {
        "spec": {"selector": {"matchLabels": {"app": "x"}}}},
                                  content_type="application/merge-patch+json")
    assert status == 422 and "field is immutable" in err["message"]


def test_json_patch_operations(cluster: Cluster) -> None:
    ops = [{"op": "add", "path": "/metadata/labels", "value": {"a": "1"}},
           {"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/b"},
           {"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/c~1d"},
           {"op": "test", "path": "/metadata/labels/b", "value": "1"},
           {"op": "add", "path": "/spec/template/spec/containers/0/args", "value": ["x"]},
           {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "y"},
           {"op": "remove", "path": "/spec/template/spec/containers/0/args/0"}]
    status, out = cluster.request("PATCH", f"{APPS}/deployments/web", ops,
                                  content_type="application/json-patch+json")
    assert status == 200, out
    assert out["metadata"]["labels"] == {"b": "1", "c/d": "1"}
    assert out["spec"]["template"]["spec"]["containers"][0]["args"] == ["y"]
    status, err = cluster.request("PATCH", f"{APPS}/deployments/web", [
        {"op": "test", "path": "/metadata/labels/b", "value": "2"}],
                                  content_type="application/json-patch+json")
    assert status == 422 and "testing value" in err["message"]


def test_limit_and_continue(cluster: Cluster) -> None:
    for i in range(5):
        assert cluster.request("POST", f"{NS}/configmaps", {"metadata": {"name": f"page-{i}"}})[
            0] == 201
    names: list[str] = []
    token = ""
    pages = 0
    while True:
        status, page = cluster.request(
            "GET", f"{NS}/configmaps?limit=2" + (f"&continue={token}" if token else ""))
        assert status == 200 and len(page["items"]) <= 2
        names += [i["metadata"]["name"] for i in page["items"]]
        pages += 1
        token = page["metadata"].get("continue", "")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == \
            len(cluster.request("GET", f"{NS}/configmaps")[1]["items"]) - len(names)
    everything = [i["metadata"]["name"] for i in cluster.request("GET", f"{NS}/configmaps")[1][
        "items"]]
    assert names == everything and pages >= 3
    status, _ = cluster.request("GET", f"{NS}/configmaps?limit=2&continue=garbage!")
    assert status == 400


def test_scale_and_eviction_subresources(cluster: Cluster) -> None:
    status, scale = cluster.request("GET", f"{APPS}/deployments/web/scale")
    assert status == 200 and scale["kind"] == "Scale" and scale["status"]["selector"] == "app=web"
    status, scale = cluster.request("PATCH", f"{APPS}/deployments/web/scale",
                                    {"spec": {"replicas": 3}},
                                    content_type="application/merge-patch+json")
    assert status == 200 and scale["spec"]["replicas"] == 3
    assert cluster.request("GET", f"{APPS}/deployments/web")[1]["spec"]["replicas"] == 3
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "bare"}}
    status, _ = cluster.request("POST", f"{NS}/pods/bare/eviction?dryRun=All", eviction)
    assert status == 201 and cluster.request("GET", f"{NS}/pods/bare")[0] == 200
    status, done = cluster.request("POST", f"{NS}/pods/bare/eviction", eviction)
    assert status == 201 and done["status"] == "Success"
    assert cluster.request("GET", f"{NS}/pods/bare")[0] == 404


def test_reviews(cluster: Cluster) -> None:
    status, me = cluster.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                 {"apiVersion": "authentication.k8s.io/v1",
                                  "kind": "SelfSubjectReview"})
    assert status == 201 and me["status"]["userInfo"]["username"] == "kubernetes-super-admin"
    sar = {"spec": {"user": "jane", "groups": ["system:authenticated"],
                    "resourceAttributes": {"verb": "list", "resource": "pods",
                                           "namespace": "api-test"}}}
    status, out = cluster.request("POST",
                                  "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)
    assert status == 201 and out["status"]["allowed"] is False
    sar["spec"]["resourceAttributes"] = {"verb": "create",  # type: ignore[index]
                                         "group": "authorization.k8s.io",
                                         "resource": "selfsubjectaccessreviews"}
    status, out = cluster.request("POST",
                                  "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)
    assert out["status"]["allowed"] is True  # system:basic-user
    assert cluster.request("POST", f"{NS}/serviceaccounts", {"metadata": {"name": "rev"}})[
        0] == 201
    token = cluster.request("POST", f"{NS}/serviceaccounts/rev/token", {"spec": {}})[1][
        "status"]["token"]
    status, out = cluster.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                  {"spec": {"token": token}})
    assert status == 201 and out["status"]["authenticated"] is True
    assert out["status"]["user"]["username"] == "system:serviceaccount:api-test:rev"
    status, out = cluster.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                  {"spec": {"token": "not.a.token"}})
    assert out["status"]["authenticated"] is False
    status, _ = cluster.request("GET", "/apis/authentication.k8s.io/v1/tokenreviews")
    assert status == 405


def test_default_roles_are_the_real_ones(cluster: Cluster) -> None:
    def can(role: str, verb: str, resource: str, group: str = "") -> bool:
        assert cluster.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                               {"metadata": {"name": f"probe-{role}"},
                                "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                            "kind": "ClusterRole", "name": role},
                                "subjects": [{"kind": "User", "name": f"probe-{role}"}]})[
            0] in (201, 409)
        out = cluster.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
            "spec": {"user": f"probe-{role}", "resourceAttributes": {
                "verb": verb, "resource": resource, "group": group,
                "namespace": "api-test"}}})[1]
        return bool(out["status"]["allowed"])

    assert can("view", "list", "pods") and can("view", "get", "deployments", "apps")
    assert not can("view", "list", "secrets") and not can("view", "list", "nodes")
    assert can("edit", "create", "secrets") and not can("edit", "create", "roles",
                                                        "rbac.authorization.k8s.io")
    assert can("admin", "create", "roles", "rbac.authorization.k8s.io")
    assert not can("admin", "list", "nodes")
    names = {r["metadata"]["name"] for r in cluster.request(
        "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles")[1]["items"]}
    assert {"cluster-admin", "admin", "edit", "view", "system:node", "system:node-bootstrapper",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            "system:node-proxier", "system:discovery", "system:basic-user"} <= names


def test_impersonation_needs_the_right(cluster: Cluster) -> None:
    status, pods = cluster.request("GET", f"{NS}/pods", headers={"Impersonate-User": "jane"})
    assert status == 403 and 'User "jane" cannot list resource "pods"' in pods["message"]
    assert cluster.request("POST", f"{NS}/serviceaccounts", {"metadata": {"name": "imp"}})[
        0] == 201
    token = cluster.request("POST", f"{NS}/serviceaccounts/imp/token", {"spec": {}})[1][
        "status"]["token"]
    status, err = cluster.request("GET", f"{NS}/pods", cert=False, token=token,
                                  headers={"Impersonate-User": "kubernetes-super-admin",
                                           "Impersonate-Group": "system:masters"})
    assert status == 403 and 'cannot impersonate resource "users"' in err["message"]


def test_protobuf_answers_decode_and_unknown_encodings_are_refused(cluster: Cluster) -> None:
    # Kinds the controllers do not create or remove while the test reads them twice.
    for path in (f"{APPS}/deployments", f"{NS}/services", "/api/v1/namespaces",
                 "/apis/rbac.authorization.k8s.io/v1/clusterroles", f"{APPS}/deployments/web"):
        status, ctype, body = raw(cluster, "GET", path, headers={"Accept": f"{PROTO}, */*"})
        assert status == 200 and ctype == PROTO, path
        as_json = cluster.request("GET", path)[1]
        decoded = protobuf.decode(body)
        items = decoded.get("items", [decoded])
        assert [i["metadata"]["name"] for i in items] == [
            i["metadata"]["name"] for i in as_json.get("items", [as_json])], path
    status, ctype, body = raw(cluster, "GET", f"{NS}/configmaps/absent",
                              headers={"Accept": PROTO})
    assert status == 404 and protobuf.decode(body)["reason"] == "NotFound"
    status, _, body = raw(cluster, "GET", f"{NS}/pods", headers={"Accept": "text/html"})
    assert status == 406 and b"application/json" in body
    widget = protobuf.MAGIC + protobuf.field_bytes(1, protobuf.field_bytes(1, b"x.io/v1") +
                                                   protobuf.field_bytes(2, b"Widget"))
    status, _, body = raw(cluster, "POST", f"{NS}/configmaps", widget,
                          {"Content-Type": PROTO})
    assert status == 415 and b"sandbox stand-in" in body and b"Widget" in body


def test_watch_in_protobuf_frames(cluster: Cluster) -> None:
    conn = http.client.HTTPSConnection("127.0.0.1", cluster.port, context=cluster.context(),
                                       timeout=10)
    conn.request("GET", f"{NS}/configmaps?watch=1&timeoutSeconds=1&fieldSelector="
                 "metadata.name%3Dpage-1", headers={"Accept": PROTO})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert resp.getheader("Content-Type", "").startswith(PROTO)
    size = struct.unpack(">I", data[:4])[0]
    frame = data[4:4 + size]
    fields = {n: v for n, _, v in protobuf.fields(frame[len(protobuf.MAGIC):])}
    event = {n: v for n, _, v in protobuf.fields(fields[2])}  # type: ignore[arg-type]
    assert event[1] == b"ADDED"
    inner = {n: v for n, _, v in protobuf.fields(event[2])}[1]  # type: ignore[arg-type]
    assert protobuf.decode(inner)["metadata"]["name"] == "page-1"  # type: ignore[arg-type]


def test_tables_for_every_kind(cluster: Cluster) -> None:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    for path in ("/api/v1/nodes", f"{NS}/pods", f"{NS}/services", f"{NS}/endpoints",
                 f"{NS}/events", f"{APPS}/deployments", f"{APPS}/replicasets",
                 f"{APPS}/daemonsets", "/apis/batch/v1/jobs",
                 "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                 "/apis/discovery.k8s.io/v1/endpointslices", f"{NS}/configmaps"):
        status, _, body = raw(cluster, "GET", path, headers={"Accept": accept})
        table = json.loads(body)
        assert status == 200 and table["kind"] == "Table", path
        assert all(len(r["cells"]) == len(table["columnDefinitions"]) for r in table["rows"])


def test_kubernetes_service_points_at_the_server(cluster: Cluster) -> None:
    ep = cluster.wait_for("the kubernetes endpoints", lambda: cluster.request(
        "GET", "/api/v1/namespaces/default/endpoints/kubernetes")[1].get("subsets"))
    assert ep[0]["ports"][0]["port"] == cluster.port
    root = cluster.wait_for("kube-root-ca.crt", lambda: cluster.request(
        "GET", f"{NS}/configmaps/kube-root-ca.crt")[1].get("data"))
    assert root["ca.crt"] == cluster.ca.cert.decode()


def test_unknown_fields_are_dropped_and_reported_as_asked(cluster: Cluster) -> None:
    cm = {"metadata": {"name": "typo"}, "datta": {"a": "b"}, "data": {"c": "d"}}
    status, err = cluster.request("POST", f"{NS}/configmaps?fieldValidation=Strict", cm)
    assert status == 400 and 'strict decoding error: unknown field "datta"' in err["message"]
    conn = http.client.HTTPSConnection("127.0.0.1", cluster.port, context=cluster.context(),
                                       timeout=10)
    conn.request("POST", f"{NS}/configmaps", body=json.dumps(cm),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    stored = json.loads(resp.read())
    conn.close()
    assert resp.status == 201 and resp.getheader("Warning") == '299 - "unknown field \\"datta\\""'
    assert "datta" not in stored and stored["data"] == {"c": "d"}
    status, _ = cluster.request("POST", f"{NS}/configmaps?fieldValidation=Sometimes", cm)
    assert status == 400


def test_custom_resource_definitions_are_listed_not_served(cluster: Cluster) -> None:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    status, listed = cluster.request("GET", crds)
    assert status == 200 and listed["items"] == []
    status, err = cluster.request("POST", crds, {"metadata": {"name": "widgets.example.com"}})
    assert status == 405 and "sandbox stand-in" in err["message"]


def test_aggregated_discovery(cluster: Cluster) -> None:
    v2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    status, ctype, body = raw(cluster, "GET", "/apis", headers={"Accept": f"{v2},"
                                                                         "application/json"})
    doc = json.loads(body)
    assert status == 200 and ctype == v2 and doc["kind"] == "APIGroupDiscoveryList"
    apps = next(g for g in doc["items"] if g["metadata"]["name"] == "apps")
    deployments = next(r for r in apps["versions"][0]["resources"]
                       if r["resource"] == "deployments")
    assert deployments["scope"] == "Namespaced" and "scale" in [
        s["subresource"] for s in deployments["subresources"]]
    status, _, body = raw(cluster, "GET", "/api", headers={"Accept": v2})
    pods = next(r for r in json.loads(body)["items"][0]["versions"][0]["resources"]
                if r["resource"] == "pods")
    eviction = next(s for s in pods["subresources"] if s["subresource"] == "eviction")
    assert eviction["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    status, ctype, body = raw(cluster, "GET", "/api", headers={"Accept": "application/json"})
    assert json.loads(body)["kind"] == "APIVersions"
