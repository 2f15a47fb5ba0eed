package config

import (
	"net"
	"net/url"
	"strconv"
)

// resolve fills the derived addresses: Restate's bind cascade for the fabric, admin and
// ingress listeners, the advertised addresses, and the metadata client's default address.
// explicit holds the dotted keys set by a file or the environment; nil means none. Malformed
// addresses are left as they are for Validate to report.
func (c *Config) resolve(explicit map[string]string) {
	resolveListener(c, "", &c.BindAddress, &c.BindPort, &c.AdvertisedAddress, explicit)
	resolveListener(c, "admin.", &c.Admin.BindAddress, &c.Admin.BindPort, &c.Admin.AdvertisedAddress, explicit)
	resolveListener(c, "ingress.", &c.Ingress.BindAddress, &c.Ingress.BindPort, &c.Ingress.AdvertisedAddress, explicit)
	if len(c.MetadataClient.Addresses) == 0 && c.HasRole(RoleMetadataServer) && c.AdvertisedAddress != "" {
		c.MetadataClient.Addresses = []string{c.AdvertisedAddress}
	}
	c.resolveGossip(explicit)
	if c.Worker.Invoker.RequestIdentityPrivateKeyPEMFile == "" {
		c.Worker.Invoker.RequestIdentityPrivateKeyPEMFile = c.RequestIdentityPrivateKeyPEMFile
	}
}

// resolveGossip applies the same cascade to the gossip listener, whose addresses are plain
// host:port, and derives the default seeds from the metadata servers' hosts.
func (c *Config) resolveGossip(explicit map[string]string) {
	g := &c.Gossip
	var advertised string
	resolveListener(c, "gossip.", &g.BindAddress, &g.BindPort, &advertised, explicit)
	if g.AdvertisedAddress == "" && advertised != "" {
		if u, err := url.Parse(advertised); err == nil {
			g.AdvertisedAddress = u.Host
		}
	}
	if len(g.Seeds) > 0 || g.BindPort == 0 {
		return
	}
	port := strconv.Itoa(g.BindPort)
	for _, a := range c.MetadataClient.Addresses {
		u, err := url.Parse(a)
		if err != nil || u.Hostname() == "" {
			continue
		}
		seed := net.JoinHostPort(u.Hostname(), port)
		if seed != g.AdvertisedAddress {
			g.Seeds = append(g.Seeds, seed)
		}
	}
}

// resolveListener applies the cascade to one listener:
//   - no bind-address: bind-ip + bind-port;
//   - bind-address set: used as is, except that an explicitly set bind-port replaces its port;
//   - use-random-ports: ports not set explicitly become 0 (the daemon binds and reports them).
//
// An unset advertised address becomes http://host:port/ once the port is known.
func resolveListener(c *Config, prefix string, addr *string, port *int, advertised *string, explicit map[string]string) {
	p := *port
	_, portSet := explicit[prefix+"bind-port"]
	if c.UseRandomPorts && !portSet {
		p = 0
	}
	host := c.BindIP
	if *addr == "" {
		*addr = net.JoinHostPort(host, strconv.Itoa(p))
	} else {
		h, ap, err := net.SplitHostPort(*addr)
		if err != nil {
			return
		}
		host = h
		if portSet {
			*addr = net.JoinHostPort(h, strconv.Itoa(p))
		} else if n, err := strconv.Atoi(ap); err == nil {
			p = n
		}
	}
	*port = p
	if *advertised == "" && p != 0 {
		*advertised = "http://" + net.JoinHostPort(advertiseHost(c, host), strconv.Itoa(p)) + "/"
	}
}

// advertiseHost picks the host peers should dial: advertised-host if set, else the bind host
// unless it is a wildcard, else the machine's hostname (what container networks resolve).
func advertiseHost(c *Config, bindHost string) string {
	if c.AdvertisedHost != "" {
		return c.AdvertisedHost
	}
	if ip := net.ParseIP(bindHost); bindHost != "" && (ip == nil || !ip.IsUnspecified()) {
		return bindHost
	}
	return hostname()
}
