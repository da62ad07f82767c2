// Package certs provides the webhook's serving certificate.
//
// Files serves tls.crt and tls.key from a directory (a Secret mounted by
// cert-manager or by hand) and picks up new files when they are rotated,
// without a restart.
//
// Rotation issues the certificate in-process (serve --cert-rotation) with
// open-policy-agent/cert-controller: the replica elected leader keeps a CA
// and a serving certificate in a Secret, renews them before they expire and
// injects the CA as caBundle into the webhook configuration; every replica
// writes the Secret's certificate into its directory for Files to serve,
// and is ready only once the API server can trust what it serves.
package certs
