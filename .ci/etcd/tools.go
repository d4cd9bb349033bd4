//go:build tools

// Pinned build recipe for etcd (the API server's store), built by scripts/k8s.sh.
// `go install go.etcd.io/etcd/server/v3@v3.6.x` is refused (its go.mod has replace lines);
// this wrapper module requires it and its sibling modules at the same version.
package tools

import _ "go.etcd.io/etcd/server/v3"
