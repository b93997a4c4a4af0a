//go:build tools

// Package tools keeps `go mod tidy` from dropping the command this wrapper builds.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
