//go:build tools

// Package tools pins the etcd the proving ground's API servers store in: go.mod requires
// go.etcd.io/etcd/server/v3 (whose main package is the etcd server) at the version tests/real/pins.yaml names.
package tools

import _ "go.etcd.io/etcd/server/v3"
