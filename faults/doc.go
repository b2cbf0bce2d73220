// Package faults holds the fault tests that run the real binaries: `indigo
// serve` and the projects module are built, started as processes and then
// killed, stopped and flooded, as a crash or an attacker would. The tests
// (package faults_test) run under `make faults`, which sets INDIGO_FAULTS=1;
// without it they skip, so that `go test ./...` stays quick.
package faults
