//go:build tools

// Package tools pins the kube-apiserver the proving ground runs: go.mod requires k8s.io/kubernetes at the
// node image's Kubernetes (stack/versions.yaml kind_node_image) and replaces each staging module, as
// k8s.io/kubernetes' own go.mod does with ./staging paths, by its release at the matching v0.X.Y.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
