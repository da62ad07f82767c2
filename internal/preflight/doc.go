// Package preflight answers, from real AWS APIs, whether a kubelet running as
// one of a set of candidate node IAM roles will pull an image, and if not,
// exactly why and how to fix it. The webhook, the audit and the CLI all call
// this one engine; only the rendering of its Results differs.
package preflight
