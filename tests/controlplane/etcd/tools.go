//go:build tools

// Package tools keeps `go mod tidy` from dropping the etcd server this wrapper builds.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
