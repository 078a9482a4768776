"""A CRI client in Python grpcio, as monitoring agents and test harnesses are written.

grpcio (gRPC's C core) sends the unix socket's path as the HTTP/2 :authority; nothing here
sets an authority. Usage: client.py <proto dir> <socket> <image> <log dir>. Prints one JSON
object with what each call returned; exits non-zero on the first unexpected error.
"""

import json
import os
import sys
import tempfile
import threading

import grpc
from grpc_tools import protoc


def load_api(proto_dir):
    out = tempfile.mkdtemp(prefix="longshore-pyapi-")
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out}",
                      f"--grpc_python_out={out}", os.path.join(proto_dir, "api.proto")])
    if rc != 0:
        sys.exit(f"protoc failed: {rc}")
    sys.path.insert(0, out)
    import api_pb2, api_pb2_grpc  # noqa: E401 (generated above)
    return api_pb2, api_pb2_grpc


def main():
    proto_dir, socket, image, log_dir = sys.argv[1:5]
    pb, rpc = load_api(proto_dir)
    channel = grpc.insecure_channel(f"unix:{socket}")
    runtime = rpc.RuntimeServiceStub(channel)
    images = rpc.ImageServiceStub(channel)
    seen = {}

    seen["version"] = runtime.Version(pb.VersionRequest()).runtime_name
    seen["image"] = images.ImageStatus(
        pb.ImageStatusRequest(image=pb.ImageSpec(image=image))).image.id

    events = []
    stream = runtime.GetContainerEvents(pb.GetEventsRequest())
    started = threading.Event()

    def watch():
        started.set()
        try:
            for event in stream:
                events.append(pb.ContainerEventType.Name(event.container_event_type))
                if len(events) >= 2:
                    break
        except grpc.RpcError:
            pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started.wait()

    pod_config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="py", uid="uid-py-" + os.urandom(4).hex(),
                                       namespace="e2e"),
        hostname="py", log_directory=log_dir, linux=pb.LinuxPodSandboxConfig())
    pod = runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config)).pod_sandbox_id
    container = runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod, sandbox_config=pod_config,
        config=pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="sleeper"), image=pb.ImageSpec(image=image),
            command=["sleep", "1000"], log_path="sleeper.log",
            linux=pb.LinuxContainerConfig()))).container_id
    runtime.StartContainer(pb.StartContainerRequest(container_id=container))
    out = runtime.ExecSync(pb.ExecSyncRequest(container_id=container,
                                              cmd=["echo", "from python"], timeout=10))
    seen["exec"] = [out.exit_code, out.stdout.decode()]
    state = runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=container))
    seen["state"] = pb.ContainerState.Name(state.status.state)
    seen["pods"] = len(runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items)

    try:
        runtime.ContainerStatus(pb.ContainerStatusRequest(container_id="no-such-container"))
        seen["unknown"] = "answered"
    except grpc.RpcError as e:
        seen["unknown"] = e.code().name

    runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    watcher.join(timeout=10)
    stream.cancel()
    seen["events"] = events
    channel.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
