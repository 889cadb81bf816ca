// Package charttest renders the usher Helm chart with Helm's Go SDK and
// checks what it produces: every object decoded strictly into the
// Kubernetes API types, the security context, probes, secrets only by
// reference, the schema refusing bad values, and helm lint.
//
// It is a Go module of its own so that Helm and the Kubernetes libraries
// never enter the usher binary's dependencies.
package charttest
