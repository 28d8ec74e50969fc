//go:build tools

// Package tools pins kwok, the node and pod lifecycle simulator of the proving ground's clusters:
// go.mod requires sigs.k8s.io/kwok at the version tests/real/pins.yaml names.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
