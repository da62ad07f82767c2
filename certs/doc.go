// Package certs provides the webhook's serving certificate. For now it
// serves tls.crt and tls.key from a directory (a mounted Secret, as
// cert-manager or the chart writes it) and picks up new files when they
// are rotated, without a restart. In-process rotation with
// open-policy-agent/cert-controller (CA and serving cert in a Secret,
// caBundle patched into the webhook configuration) comes later and will
// live here too.
package certs
