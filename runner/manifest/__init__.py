"""Text -> a typed `Manifest`: YAML with positions, `${VAR}`, `--set`, durations, rates.

Uses nothing else of `runner` but its errors.
"""

from ._durations import Rate, format_duration, parse_duration, parse_rate
from ._load import load_manifest, manifest_from_data
from ._model import AppSpec, InputsSpec, Manifest, OutputSpec, RunSpec, Secret, SourceKind
from ._notify import NotifySpec, Webhook
from ._ray_spec import Placement, RayReplica, RaySpec
from ._replica_specs import (
    ALL_GPUS,
    LOCAL_READY_TIMEOUT,
    DuplicateReplica,
    LocalReplica,
    ReplicaSpec,
    SpaceReplica,
    UrlReplica,
)
from ._secrets import MIN_MASKED_LENGTH, Redactor, is_secret_name
from ._yaml import dotted

__all__ = [
    "ALL_GPUS",
    "LOCAL_READY_TIMEOUT",
    "MIN_MASKED_LENGTH",
    "AppSpec",
    "DuplicateReplica",
    "InputsSpec",
    "LocalReplica",
    "Manifest",
    "NotifySpec",
    "OutputSpec",
    "Placement",
    "Rate",
    "RayReplica",
    "RaySpec",
    "Redactor",
    "ReplicaSpec",
    "RunSpec",
    "Secret",
    "SourceKind",
    "SpaceReplica",
    "UrlReplica",
    "Webhook",
    "dotted",
    "format_duration",
    "is_secret_name",
    "load_manifest",
    "manifest_from_data",
    "parse_duration",
    "parse_rate",
]
