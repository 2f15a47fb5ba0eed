module gorestate.dev/shared

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/golang/snappy v0.0.4 // indirect
	github.com/syndtr/goleveldb v1.0.1-0.20220721030215-126854af5e6d
	google.golang.org/protobuf v1.36.11 // indirect
)
