// Package fake provides in-memory stand-ins for the awsclient interfaces.
//
// Each fake embeds the interface it implements (so a method a test does not
// expect panics instead of silently answering), holds canned data, returns
// an injected error per operation (WantErr), counts calls and records
// inputs. They are safe for concurrent use. The ECR fake reproduces the ECR
// behaviours Lookups depends on: DescribeImages fails the whole call with
// ImageNotFoundException when any requested image is missing, it hides
// images that are not ACTIVE (archived, being restored) unless the request
// filters on their ImageStatus or ANY, and IAM returns policy documents
// URL-encoded.
package fake
