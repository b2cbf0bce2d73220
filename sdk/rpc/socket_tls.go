package rpc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"time"
)

// With SocketOptions.TLS, each side of the data socket makes a key and a
// self-signed certificate for the life of the process, and they trade
// certificates over the control connection (itself on mTLS then): each
// end then accepts exactly the other's certificate, with no CA to trust.

// newCert makes a P-256 key and a self-signed certificate for it.
func newCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	// A certificate's validity is on the real clock (and is not checked:
	// the peer is pinned).
	// wall clock: certificate validity
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "indigo module data socket"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

var errPeerCert = errors.New("rpc: the data socket's peer presented another certificate")

// pinned accepts exactly the certificate want.
func pinned(want []byte) func([][]byte, [][]*x509.Certificate) error {
	want = bytes.Clone(want)
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) != 1 || !bytes.Equal(raw[0], want) {
			return errPeerCert
		}
		return nil
	}
}

// clientTLS is the host's end: it presents own and accepts only peer.
func clientTLS(own tls.Certificate, peer []byte) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{own},
		// No CA signs either certificate: VerifyPeerCertificate pins the
		// module's instead.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: pinned(peer),
		MinVersion:            tls.VersionTLS13,
	}
}

// serverTLS is the module's end: it presents own and requires peer.
func serverTLS(own tls.Certificate, peer []byte) *tls.Config {
	return &tls.Config{
		Certificates:          []tls.Certificate{own},
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: pinned(peer),
		MinVersion:            tls.VersionTLS13,
	}
}
