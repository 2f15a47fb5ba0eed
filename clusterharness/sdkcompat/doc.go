// Package sdkcompat runs services written with Restate's SDKs in other languages against
// the gorestate binary: they must work unchanged. Its test needs the SDK installed (make
// test-ts-sdk installs Restate's TypeScript SDK and a Node.js 22 from npm into ts/ and
// runs it); without it the test skips.
package sdkcompat
