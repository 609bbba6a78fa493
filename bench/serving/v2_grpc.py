"""Build ghz inputs for a peer's V2 (KServe/Triton) gRPC API, inside that peer's venv.

``python v2_grpc.py mlserver|kserve MODEL ROWS_JSON OUTDIR BATCH...`` writes
``v2-<peer>.protoset`` and ``v2-<peer>-<model>-<batch>.bin`` (serialized
ModelInferRequest) into OUTDIR, from the peer's own generated protobuf modules.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2


def pb2(peer: str) -> Any:
    if peer == "mlserver":
        from mlserver.grpc import dataplane_pb2

        return dataplane_pb2
    from kserve.protocol.grpc import grpc_predict_v2_pb2

    return grpc_predict_v2_pb2


def main() -> None:
    peer, model, rows_json, outdir, *batches = sys.argv[1:]
    module = pb2(peer)
    out = Path(outdir)
    files = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()
    todo = [module.DESCRIPTOR]
    while todo:
        fd = todo.pop()
        if fd.name not in seen:
            seen.add(fd.name)
            fd.CopyToProto(files.file.add())
            todo.extend(fd.dependencies)
    (out / f"v2-{peer}.protoset").write_bytes(files.SerializeToString())
    rows = json.loads(Path(rows_json).read_text())
    for batch in map(int, batches):
        request = module.ModelInferRequest(model_name=model)
        tensor = request.inputs.add(name="input-0", datatype="FP64")
        tensor.shape.extend([batch, len(rows[0])])
        tensor.contents.fp64_contents.extend(v for row in rows[:batch] for v in row)
        (out / f"v2-{peer}-{model}-{batch}.bin").write_bytes(request.SerializeToString())


if __name__ == "__main__":
    main()
