"""manifests/rbac.yaml on a real API server: the pipeline runner's token may do exactly what the
launcher and the deploy step need, in its namespace, and nothing else (RBAC decided by the server)."""

from __future__ import annotations

import uuid

import pytest
from kube_envtest import EXPECTED_RULES
from kubernetes import client

from distml.errors import DistmlError
from distml.serving.deploy import deploy_inference_service
from distml.serving.isvc import ServingSpec, build_inference_service

pytestmark = pytest.mark.envtest

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
RESOURCES = [
    *EXPECTED_RULES,
    ("", "secrets"),
    ("", "services"),
    ("", "pods/exec"),
    ("", "configmaps"),
    ("apps", "deployments"),
    ("kubeflow.org", "pytorchjobs"),
    ("serving.kserve.io", "servingruntimes"),
    ("rbac.authorization.k8s.io", "roles"),
]


def allowed(api, namespace: str, group: str, resource: str, verb: str) -> bool:
    name, _, subresource = resource.partition("/")
    attributes = client.V1ResourceAttributes(
        namespace=namespace, group=group, resource=name, subresource=subresource or None, verb=verb
    )
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    return client.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed


def test_the_runner_may_do_exactly_what_the_steps_need(envtest_cluster):
    granted = {
        (group, resource): {
            verb for verb in VERBS if allowed(envtest_cluster.runner, envtest_cluster.namespace, group, resource, verb)
        }
        for group, resource in RESOURCES
    }
    assert {key: verbs for key, verbs in granted.items() if verbs} == EXPECTED_RULES
    # Only in the namespace the Role was applied to.
    assert not allowed(envtest_cluster.runner, "default", "kubeflow.org", "tfjobs", "create")


def test_a_refused_deploy_names_the_verb_and_the_role(envtest_cluster):
    core = client.CoreV1Api(envtest_cluster.admin)
    account = f"unbound-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_service_account(envtest_cluster.namespace, {"metadata": {"name": account}})
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    token = core.create_namespaced_service_account_token(account, envtest_cluster.namespace, request).status.token
    spec = ServingSpec(name="refused", storage_uri="pvc://models/best", namespace=envtest_cluster.namespace)
    with pytest.raises(DistmlError) as refused:
        deploy_inference_service(build_inference_service(spec), envtest_cluster.plane.client(token), timeout_s=1)
    message = str(refused.value)
    assert (
        f"forbidden: cannot get inferenceservices.serving.kserve.io in namespace {envtest_cluster.namespace}" in message
    )
    assert f"system:serviceaccount:{envtest_cluster.namespace}:{account}" in message
    assert "Role distml-pipeline-runner in manifests/rbac.yaml" in message
