// Package protov1 holds the protobuf messages and gRPC stubs generated from
// module.proto. It is internal so that neither module authors nor the host
// depend on generated types: sdk/rpc converts them to plain Go values.
package protov1
