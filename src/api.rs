//! The CRI v1 API (`runtime.v1`), generated from `proto/api.proto` by `build.rs`.
#![allow(clippy::all, missing_docs)]

tonic::include_proto!("runtime.v1");
