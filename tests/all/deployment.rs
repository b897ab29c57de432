//! The Kubernetes manifests (`deploy/kubernetes`) and the image (`deploy/container`): valid
//! for the Kubernetes versions Azure IoT Operations is validated on (overview-deploy: K3s
//! 1.31.1, Tanzu 1.28.11), and in agreement with the host they run. The StatefulSet's own
//! command line is run with its volumes laid out as the kubelet mounts them, and its probe
//! paths are asked on its port.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use end_to_end_tests::broker_security::Pki;
use end_to_end_tests::host_process::HostProcess;
use end_to_end_tests::{http_get, python_with};
use serde_json::Value;

const VALIDATOR: &str = "kubernetes-validate==1.37.0";
/// overview-deploy's minimum validated versions: Tanzu Kubernetes 1.28.11, K3s 1.31.1.
const KUBERNETES_VERSIONS: &[&str] = &["1.28.0", "1.31.0"];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a multi-document YAML file.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .collect()
}

fn kustomization() -> Value {
    yaml(&deploy().join("kubernetes/kustomization.yaml"))
}

fn statefulset() -> Value {
    yaml(&deploy().join("kubernetes/statefulset.yaml"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_manifests_are_valid_for_the_kubernetes_versions_azure_iot_operations_supports() {
    let kubernetes = deploy().join("kubernetes");
    let resources: Vec<PathBuf> = strings(&kustomization()["resources"])
        .iter()
        .map(|r| kubernetes.join(r))
        .collect();
    for generator in kustomization()["configMapGenerator"].as_array().unwrap() {
        for file in strings(&generator["files"]) {
            assert!(kubernetes.join(&file).is_file(), "{file} is not there");
        }
    }
    let python = python_with("kubernetes-validate", VALIDATOR);
    let validator = python.with_file_name("kubernetes-validate");
    for version in KUBERNETES_VERSIONS {
        let output = Command::new(&validator)
            .args(["--strict", "-k", version])
            .args(&resources)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "Kubernetes {version}:\n{text}");
        assert_eq!(
            text.matches(" passed for resource ").count(),
            resources.len(),
            "Kubernetes {version}:\n{text}"
        );
    }
}

/// The image's user, entry point and port, as the Containerfile gives them.
struct Image {
    user: u64,
    entrypoint: String,
    port: u64,
}

fn image() -> Image {
    let containerfile = std::fs::read_to_string(deploy().join("container/Containerfile")).unwrap();
    // The last stage is what runs.
    let last = containerfile.rsplit("\nFROM ").next().unwrap();
    let value = |instruction: &str| {
        last.lines()
            .find_map(|l| l.strip_prefix(instruction))
            .unwrap_or_else(|| panic!("no {instruction} in the last stage"))
            .trim()
            .to_string()
    };
    let entrypoint: Vec<String> = serde_json::from_str(&value("ENTRYPOINT ")).unwrap();
    Image {
        user: value("USER ").split(':').next().unwrap().parse().unwrap(),
        entrypoint: entrypoint.join(" "),
        port: value("EXPOSE ").parse().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statefulset_runs_the_host_of_the_image_with_its_volumes_probes_and_instances() {
    let set = statefulset();
    let pod = &set["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let image = image();

    // The image: its name and version as the kustomization sets them, its user and port.
    assert_eq!(container["image"], "dataflow-host");
    assert_eq!(kustomization()["images"][0]["name"], "dataflow-host");
    assert_eq!(
        kustomization()["images"][0]["newTag"],
        env!("CARGO_PKG_VERSION"),
        "the image is tagged with the workspace version (deploy/container/build.sh)"
    );
    assert_eq!(image.entrypoint, "/dataflow-host");
    assert!(
        container.get("command").is_none(),
        "the entry point is the image's"
    );
    assert_eq!(
        pod["securityContext"]["runAsUser"].as_u64(),
        Some(image.user)
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let port = container["ports"][0]["containerPort"].as_u64().unwrap();
    assert_eq!(port, image.port);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            container[probe]["httpGet"]["port"],
            container["ports"][0]["name"]
        );
    }

    // The volumes, laid out under a root as the kubelet would mount them.
    let root = std::env::temp_dir().join(format!("statefulset-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mounted = |path: &str| root.join(path.trim_start_matches('/'));
    let volumes = pod["volumes"].as_array().unwrap();
    let claims = set["spec"]["volumeClaimTemplates"].as_array().unwrap();
    // A pod volume, or a claim of the StatefulSet's (an empty volume at first).
    let volume = |name: &str| match volumes.iter().find(|v| v["name"] == name) {
        Some(volume) => volume.clone(),
        None => {
            assert!(
                claims.iter().any(|c| c["metadata"]["name"] == name),
                "the mount {name} has no volume"
            );
            Value::Null
        }
    };
    let config: Vec<Value> = documents(&deploy().join("kubernetes/config/dataflow.yaml"));
    let broker = config
        .iter()
        .find(|d| d["metadata"]["name"] == "default")
        .expect("the default endpoint");
    let mqtt = &broker["spec"]["mqttSettings"];
    let mut mounts = Vec::new();
    let mut trust_bundle_mount = None;
    for mount in container["volumeMounts"].as_array().unwrap() {
        let path = mount["mountPath"].as_str().unwrap().to_string();
        let dir = mounted(&path);
        std::fs::create_dir_all(&dir).unwrap();
        let volume = volume(mount["name"].as_str().unwrap());
        if let Some(config_map) = volume.get("configMap") {
            match config_map["name"].as_str().unwrap() {
                "dataflow-host-config" => {
                    std::fs::copy(
                        deploy().join("kubernetes/config/dataflow.yaml"),
                        dir.join("dataflow.yaml"),
                    )
                    .unwrap();
                }
                bundle => {
                    assert_eq!(mqtt["tls"]["trustedCaCertificateConfigMapRef"], bundle);
                    trust_bundle_mount = Some((path.clone(), bundle.to_string()));
                    std::fs::write(dir.join("ca.crt"), Pki::generate().ca).unwrap();
                }
            }
        }
        if let Some(projected) = volume.get("projected") {
            let token = &projected["sources"][0]["serviceAccountToken"];
            let audience = &mqtt["authentication"]["serviceAccountTokenSettings"]["audience"];
            assert_eq!(&token["audience"], audience);
            // The host reads the token for an audience at <dir>/<audience>.
            assert_eq!(&token["path"], audience);
            std::fs::write(dir.join(token["path"].as_str().unwrap()), "a-token").unwrap();
        }
        mounts.push(path);
    }

    // What the host writes is on a volume, not on the read-only root.
    let args = strings(&container["args"]);
    let value_of = |flag: &str| {
        let at = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("no {flag}"));
        args[at + 1].clone()
    };
    let on_a_volume = |path: &str| mounts.iter().any(|m| Path::new(path).starts_with(m));
    for written in [
        value_of("--cache-dir"),
        value_of("--dead-letter"),
        "/tmp".to_string(),
    ] {
        assert!(on_a_volume(&written), "{written} is on the read-only root");
    }
    let (trust_mount, bundle) = trust_bundle_mount.expect("the trust bundle is mounted");
    assert_eq!(
        Path::new(&value_of("--config-maps")).join(bundle),
        Path::new(&trust_mount),
        "the trust bundle is mounted at <--config-maps>/<its name>"
    );

    // replicas is the instance count of the profile the dataflows run in.
    let profile = config
        .iter()
        .find(|d| d["kind"] == "DataflowProfile")
        .unwrap();
    assert_eq!(set["spec"]["replicas"], profile["spec"]["instanceCount"]);
    // The ordinal is the instance: POD_INDEX from the StatefulSet's pod-index label.
    assert_eq!(value_of("--instance"), "$(POD_INDEX)");
    assert_eq!(
        container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['apps.kubernetes.io/pod-index']"
    );
    // Longer than the host takes to deliver and acknowledge what it holds on SIGTERM.
    let drain = dataflow_runtime::pipeline::PipelineOptions::default().shutdown_grace;
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > drain.as_secs());

    // The host with this very command line (paths under the root, instance 1, the metrics
    // on a free loopback port instead of 0.0.0.0:<port>).
    let metrics_addr = value_of("--metrics-addr");
    assert_eq!(metrics_addr, format!("0.0.0.0:{port}"));
    let local_metrics = format!("127.0.0.1:{}", end_to_end_tests::broker::free_port());
    let run_args: Vec<String> = args
        .iter()
        .map(|a| match a.as_str() {
            "$(POD_INDEX)" => "1".to_string(),
            a if a == metrics_addr => local_metrics.clone(),
            a if a.starts_with('/') => mounted(a).display().to_string(),
            a => a.to_string(),
        })
        .collect();
    let log = root.join("host.log");
    let mut host = HostProcess::start_with_env(
        &run_args,
        &log,
        &[("TMPDIR", mounted("/tmp").display().to_string())],
    );
    host.wait_for_log(
        "from the MQTT broker at aio-broker:18883 as client `dataflow-host-thermostats-1`",
        1,
        Duration::from_secs(60),
    )
    .await;
    let path = |probe: &str| {
        container[probe]["httpGet"]["path"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&local_metrics).is_err() {
        assert!(std::time::Instant::now() < deadline, "no metrics port");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(http_get(&local_metrics, &path("livenessProbe")).0, 200);
    // There is no aio-broker here: alive, and not ready (starting, then unconnected), with
    // the reason; never ready.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http_get(&local_metrics, &path("readinessProbe"));
        assert_eq!(status, 503, "{body}");
        if body.contains("not connected to its MQTT broker") {
            break;
        }
        assert!(body.contains("starting"), "{body}");
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.terminate(Duration::from_secs(30)).await;
    std::fs::remove_dir_all(&root).unwrap();
}
