// Package moto runs a moto_server (the AWS service emulator) for
// integration tests and builds aws.Configs that talk to it through the real
// SDK.
//
// Each Start gets its own server on a free loopback port, so tests in
// different packages can run in parallel. moto_server must be on PATH; a
// missing emulator fails the test rather than skipping it, so an
// integration suite can never pass by not running.
//
// moto keeps separate state per account. Requests act as the account chosen,
// in order, by the server's MOTO_ACCOUNT_ID (WithAccountID), the
// x-moto-account-id request header (ConfigAs), or the access key, which is
// 123456789012 (DefaultAccount) for any key not issued by moto, and the
// role's account for credentials from sts:AssumeRole (moto accepts any role
// ARN, existing or not, and enforces no policy).
package moto
