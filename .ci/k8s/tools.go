//go:build tools

// Pinned build recipe for the Kubernetes control-plane binaries that scripts/test.sh runs
// (envtest-style: no kubelet, no containers). `go install pkg@version` refuses k8s.io/kubernetes
// because its go.mod has replace lines, so this wrapper module requires it and pins every
// staging module (k8s.io/*) to the matching v0.x tag. Build with scripts/k8s.sh.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
