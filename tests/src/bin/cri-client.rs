//! A small CRI client for the containerd tests: one call per invocation, so
//! a test script drives the kubelet's side of a pod step by step and checks
//! the network between the steps.
//!
//! cri-client SOCKET version
//! cri-client SOCKET run-pod NAME CGROUP_PARENT [HOST_PORT:CONTAINER_PORT]  → pod id and IP
//! cri-client SOCKET create POD_ID NAME CGROUP_PARENT [HOST_PORT:CONTAINER_PORT] -- ARGS...
//!                                                                            → container id
//! cri-client SOCKET start|stop|remove CONTAINER_ID
//! cri-client SOCKET exec CONTAINER_ID -- CMD...                               → its output, then `exit N`
//! cri-client SOCKET update CONTAINER_ID MEMORY_BYTES CPU_QUOTA
//! cri-client SOCKET stop-pod|remove-pod POD_ID
//!
//! Pods run with the runtime handler `CRI_HANDLER` (default `minirun`).
//! A pod's configuration is made again from its name, cgroup parent and
//! port for `create` (the CRI wants the sandbox's config with every
//! container), as the kubelet keeps it.

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

const IMAGE: &str = "docker.io/library/busybox:test";

/// The runtime handler pods are run with: `CRI_HANDLER`, default `minirun`.
fn handler() -> String {
    std::env::var("CRI_HANDLER").unwrap_or_else(|_| "minirun".into())
}

fn usage() -> ! {
    eprintln!("usage: cri-client SOCKET version|run-pod|create|start|stop|remove|exec|update|stop-pod|remove-pod ...");
    std::process::exit(2)
}

fn port(spec: Option<&String>) -> Vec<PortMapping> {
    spec.and_then(|s| s.split_once(':'))
        .map(|(h, c)| PortMapping {
            protocol: Protocol::Tcp as i32,
            host_port: h.parse().expect("a host port"),
            container_port: c.parse().expect("a container port"),
            host_ip: String::new(),
        })
        .into_iter()
        .collect()
}

fn pod_config(name: &str, cgroup_parent: &str, ports: Vec<PortMapping>) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: format!("/tmp/cri-logs/{name}"),
        port_mappings: ports,
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn connect(socket: String) -> Channel {
    Endpoint::try_from("http://[::]:50051")
        .expect("an endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .unwrap_or_else(|e| {
            eprintln!("cri-client: connecting: {e}");
            std::process::exit(1)
        })
}

fn fail(what: &str, e: tonic::Status) -> ! {
    eprintln!("cri-client: {what}: {}", e.message());
    std::process::exit(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        usage();
    }
    let mut c = RuntimeServiceClient::new(connect(args[0].clone()).await);
    let rest = &args[2..];
    let after_dashes = || -> Vec<String> {
        rest.iter()
            .skip_while(|a| *a != "--")
            .skip(1)
            .cloned()
            .collect()
    };
    match args[1].as_str() {
        "version" => {
            let v = c
                .version(VersionRequest {
                    version: "v1".into(),
                })
                .await
                .unwrap_or_else(|e| fail("version", e))
                .into_inner();
            println!("{} {}", v.runtime_name, v.runtime_version);
        }
        "run-pod" => {
            let config = pod_config(&rest[0], &rest[1], port(rest.get(2)));
            let id = c
                .run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(config),
                    runtime_handler: handler(),
                })
                .await
                .unwrap_or_else(|e| fail("RunPodSandbox", e))
                .into_inner()
                .pod_sandbox_id;
            let status = c
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: id.clone(),
                    verbose: false,
                })
                .await
                .unwrap_or_else(|e| fail("PodSandboxStatus", e))
                .into_inner()
                .status
                .unwrap_or_default();
            let ip = status.network.map(|n| n.ip).unwrap_or_default();
            println!("{id} {ip}");
        }
        "create" => {
            let (pod, name, parent) = (&rest[0], &rest[1], &rest[2]);
            let ports = port(rest.get(3).filter(|a| *a != "--"));
            let sandbox = pod_config(pod_name(pod, &mut c).await.as_str(), parent, ports);
            let config = ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: name.clone(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: IMAGE.into(),
                    ..Default::default()
                }),
                command: after_dashes(),
                log_path: format!("{name}.log"),
                linux: Some(LinuxContainerConfig::default()),
                ..Default::default()
            };
            let id = c
                .create_container(CreateContainerRequest {
                    pod_sandbox_id: pod.clone(),
                    config: Some(config),
                    sandbox_config: Some(sandbox),
                })
                .await
                .unwrap_or_else(|e| fail("CreateContainer", e))
                .into_inner()
                .container_id;
            println!("{id}");
        }
        "start" => {
            c.start_container(StartContainerRequest {
                container_id: rest[0].clone(),
            })
            .await
            .unwrap_or_else(|e| fail("StartContainer", e));
        }
        "stop" => {
            c.stop_container(StopContainerRequest {
                container_id: rest[0].clone(),
                timeout: 2,
            })
            .await
            .unwrap_or_else(|e| fail("StopContainer", e));
        }
        "remove" => {
            c.remove_container(RemoveContainerRequest {
                container_id: rest[0].clone(),
            })
            .await
            .unwrap_or_else(|e| fail("RemoveContainer", e));
        }
        "exec" => {
            let r = c
                .exec_sync(ExecSyncRequest {
                    container_id: rest[0].clone(),
                    cmd: after_dashes(),
                    timeout: 10,
                })
                .await
                .unwrap_or_else(|e| fail("ExecSync", e))
                .into_inner();
            print!("{}", String::from_utf8_lossy(&r.stdout));
            eprint!("{}", String::from_utf8_lossy(&r.stderr));
            println!("exit {}", r.exit_code);
        }
        "update" => {
            c.update_container_resources(UpdateContainerResourcesRequest {
                container_id: rest[0].clone(),
                linux: Some(LinuxContainerResources {
                    memory_limit_in_bytes: rest[1].parse().expect("memory bytes"),
                    cpu_quota: rest[2].parse().expect("a cpu quota"),
                    cpu_period: 100_000,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| fail("UpdateContainerResources", e));
        }
        "stop-pod" => {
            c.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: rest[0].clone(),
            })
            .await
            .unwrap_or_else(|e| fail("StopPodSandbox", e));
        }
        "remove-pod" => {
            c.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: rest[0].clone(),
            })
            .await
            .unwrap_or_else(|e| fail("RemovePodSandbox", e));
        }
        _ => usage(),
    }
}

/// The name a pod was run with, from its status.
async fn pod_name(pod: &str, c: &mut RuntimeServiceClient<Channel>) -> String {
    c.pod_sandbox_status(PodSandboxStatusRequest {
        pod_sandbox_id: pod.into(),
        verbose: false,
    })
    .await
    .unwrap_or_else(|e| fail("PodSandboxStatus", e))
    .into_inner()
    .status
    .and_then(|s| s.metadata)
    .map(|m| m.name)
    .unwrap_or_default()
}
