package examples

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	restate "github.com/restatedev/sdk-go"
	"github.com/restatedev/sdk-go/server"
)

// Services returns a fresh definition of every example service.
func Services() []restate.ServiceDefinition {
	return []restate.ServiceDefinition{
		Greeter(),
		Counter(),
		Orders(),
		Reminders(),
		Sleeper(),
		Flaky(),
		Signup(),
		Approvals(),
		Chain(),
		Control(),
		MixedProgram(),
		MixedAccount(),
		MixedWorker(),
		MixedResolver(),
		Traced(),
	}
}

// NewServer returns an SDK endpoint with every example service bound to it.
func NewServer() *server.Restate {
	r := server.NewRestate()
	for _, def := range Services() {
		r.Bind(def)
	}
	return r
}

// Serve serves the example services on addr (h2c, as Restate deployments speak) until ctx
// is cancelled.
func Serve(ctx context.Context, addr string) error {
	if err := NewServer().Start(ctx, addr); err != nil {
		return fmt.Errorf("serve examples on %s: %w", addr, err)
	}
	return nil
}

// ServeListener serves the example services on an existing listener until ctx is
// cancelled. Tests use it with a listener on 127.0.0.1:0, so they learn the port before
// registering the deployment and never collide on fixed ports.
func ServeListener(ctx context.Context, ln net.Listener) error {
	return ServeListenerWith(ctx, ln, ServeOptions{})
}

// ServeOptions change how the examples are served.
type ServeOptions struct {
	// IdentityKeys, when set, are the request-identity public keys (publickeyv1_…) the
	// SDK accepts; requests signed otherwise, or not at all, get 401.
	IdentityKeys []string
	// TLS, when set, serves HTTPS (HTTP/2 over TLS) with this configuration instead of h2c.
	TLS *tls.Config
}

// ServeListenerWith is ServeListener with options.
func ServeListenerWith(ctx context.Context, ln net.Listener, opts ServeOptions) error {
	r := NewServer()
	if len(opts.IdentityKeys) > 0 {
		r = r.WithIdentityV1(opts.IdentityKeys...)
	}
	handler, err := r.Handler()
	if err != nil {
		return fmt.Errorf("build examples handler: %w", err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if opts.TLS != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	srv := &http.Server{Handler: handler, Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second, TLSConfig: opts.TLS}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		// Bounded, so a stuck invocation stream cannot hold a test's cleanup forever.
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if opts.TLS != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped
		return nil
	}
	return fmt.Errorf("serve examples on %s: %w", ln.Addr(), err)
}
