//go:build tools

// Package tools pins kind, whose real kubeadm rendering the bring-up's self-tests capture:
// go.mod requires sigs.k8s.io/kind at the version stack/versions.yaml tools.kind names.
package tools

import _ "sigs.k8s.io/kind"
