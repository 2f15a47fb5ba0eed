module gorestate.dev/ingressd

go 1.26.0
