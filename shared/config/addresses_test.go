package config

import (
	"os"
	"slices"
	"testing"
)

func TestAddressCascade(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	type addrs struct{ fabric, admin, ingress, advertised, adminAdvertised string }
	tests := []struct {
		name    string
		file    string
		environ []string
		want    addrs
	}{
		{
			name: "defaults",
			want: addrs{"0.0.0.0:5122", "0.0.0.0:9070", "0.0.0.0:8080", "http://" + host + ":5122/", "http://" + host + ":9070/"},
		},
		{
			name:    "bind-ip cascades to every listener",
			environ: []string{"RESTATE_BIND_IP=127.0.0.1"},
			want:    addrs{"127.0.0.1:5122", "127.0.0.1:9070", "127.0.0.1:8080", "http://127.0.0.1:5122/", "http://127.0.0.1:9070/"},
		},
		{
			name: "loopback run from PROTOCOL.md",
			environ: []string{"RESTATE_BIND_IP=127.0.0.1", "RESTATE_BIND_PORT=15122", "RESTATE_ADMIN__BIND_PORT=19070",
				"RESTATE_INGRESS__BIND_PORT=18080", "RESTATE_ADVERTISED_ADDRESS=http://127.0.0.1:15122/"},
			want: addrs{"127.0.0.1:15122", "127.0.0.1:19070", "127.0.0.1:18080", "http://127.0.0.1:15122/", "http://127.0.0.1:19070/"},
		},
		{
			name:    "IPv6 wildcard",
			environ: []string{"RESTATE_BIND_IP=::", "RESTATE_ADVERTISED_HOST=n1"},
			want:    addrs{"[::]:5122", "[::]:9070", "[::]:8080", "http://n1:5122/", "http://n1:9070/"},
		},
		{
			name:    "bind-address used as is",
			environ: []string{"RESTATE_ADMIN__BIND_ADDRESS=10.0.0.1:9999", "RESTATE_BIND_ADDRESS=10.0.0.1:7000"},
			want:    addrs{"10.0.0.1:7000", "10.0.0.1:9999", "0.0.0.0:8080", "http://10.0.0.1:7000/", "http://10.0.0.1:9999/"},
		},
		{
			name:    "bind-port overrides only the port of a bind-address",
			file:    "[admin]\nbind-address = \"10.0.0.1:9999\"",
			environ: []string{"RESTATE_ADMIN__BIND_PORT=1234"},
			want:    addrs{"0.0.0.0:5122", "10.0.0.1:1234", "0.0.0.0:8080", "http://" + host + ":5122/", "http://10.0.0.1:1234/"},
		},
		{
			name:    "random ports leave advertised addresses to the daemon",
			environ: []string{"RESTATE_USE_RANDOM_PORTS=true", "RESTATE_BIND_IP=127.0.0.1", "RESTATE_INGRESS__BIND_PORT=8081"},
			want:    addrs{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:8081", "", ""},
		},
		{
			name:    "explicit advertised addresses are kept",
			environ: []string{"RESTATE_ADVERTISED_ADDRESS=http://n1:5122/", "RESTATE_ADMIN__ADVERTISED_ADDRESS=https://admin.example/"},
			want:    addrs{"0.0.0.0:5122", "0.0.0.0:9070", "0.0.0.0:8080", "http://n1:5122/", "https://admin.example/"},
		},
	}
	for _, tt := range tests {
		path := ""
		if tt.file != "" {
			path = writeFile(t, tt.file)
		}
		c := mustLoad(t, path, tt.environ...)
		got := addrs{c.BindAddress, c.Admin.BindAddress, c.Ingress.BindAddress, c.AdvertisedAddress, c.Admin.AdvertisedAddress}
		if got != tt.want {
			t.Errorf("%s:\n got  %+v\n want %+v", tt.name, got, tt.want)
		}
	}
}

func TestMetadataClientAddressDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"own address on a metadata server", []string{"RESTATE_ADVERTISED_ADDRESS=http://n1:5122/"}, []string{"http://n1:5122/"}},
		{"configured addresses kept", []string{"RESTATE_METADATA_CLIENT__ADDRESSES=[http://n2:5122]"}, []string{"http://n2:5122"}},
		{"worker-only node with addresses", []string{"RESTATE_ROLES=[worker]", "RESTATE_METADATA_CLIENT__ADDRESSES=[http://m:5122]"}, []string{"http://m:5122"}},
		{"unknown until bound", []string{"RESTATE_USE_RANDOM_PORTS=true"}, []string{}},
	}
	for _, tt := range tests {
		c := mustLoad(t, "", tt.environ...)
		if !slices.Equal(c.MetadataClient.Addresses, tt.want) {
			t.Errorf("%s: addresses = %q, want %q", tt.name, c.MetadataClient.Addresses, tt.want)
		}
	}
}

func TestGossipAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		environ          []string
		bind, advertised string
		seeds            []string
	}{
		{"defaults", nil, "0.0.0.0:5123", "", nil},
		{"seeds from the metadata servers", []string{
			"RESTATE_ADVERTISED_HOST=n2", "RESTATE_ROLES=[worker]",
			"RESTATE_METADATA_CLIENT__ADDRESSES=[http://n1:5122,http://n2:5122,http://n3:5122/]",
		}, "0.0.0.0:5123", "n2:5123", []string{"n1:5123", "n3:5123"}},
		{"explicit seeds and port", []string{
			"RESTATE_GOSSIP__BIND_PORT=7000", "RESTATE_BIND_IP=127.0.0.1", "RESTATE_GOSSIP__SEEDS=[10.0.0.1:7000]",
		}, "127.0.0.1:7000", "127.0.0.1:7000", []string{"10.0.0.1:7000"}},
		{"random ports leave seeds to the caller", []string{"RESTATE_USE_RANDOM_PORTS=true", "RESTATE_BIND_IP=127.0.0.1"}, "127.0.0.1:0", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, "", tt.environ...)
			g := c.Gossip
			if g.BindAddress != tt.bind || (tt.advertised != "" && g.AdvertisedAddress != tt.advertised) || !slices.Equal(g.Seeds, tt.seeds) {
				t.Errorf("gossip = bind %q advertised %q seeds %v; want %q %q %v", g.BindAddress, g.AdvertisedAddress, g.Seeds, tt.bind, tt.advertised, tt.seeds)
			}
		})
	}
}
