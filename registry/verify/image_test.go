package verify_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/zen-dev/zen/internal/testregistry"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/registry/verify"
)

// TestImage checks images in an in-process registry against a key: one
// signed by it with zen's signing code, one unsigned, one signed by
// another key, and one whose signature is another image's, replayed.
func TestImage(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	// The store's artifact repository is host/ml/artifacts: images are
	// pushed there so that zen's own code can sign them in place.
	store, err := registry.OpenRemote(host + "/ml")
	if err != nil {
		t.Fatal(err)
	}
	repo := store.ArtifactRepository()
	image := func(tag string) string {
		t.Helper()
		ref := host + "/ml/artifacts:" + tag
		testregistry.PushImage(t, ref)
		pinned, err := registry.ResolveImage(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return pinned
	}
	digest := func(pinned string) string { return pinned[strings.LastIndex(pinned, "@")+1:] }
	key, other := signer(t), signer(t)

	signed := image("signed")
	if err := signature.Sign(ctx, repo, digest(signed), key); err != nil {
		t.Fatal(err)
	}
	unsigned := image("unsigned")
	byOther := image("other")
	if err := signature.Sign(ctx, repo, digest(byOther), other); err != nil {
		t.Fatal(err)
	}
	// A copy of the signed image's signature manifest under another
	// image's signature tag: by the key, but of another digest.
	replayed := image("replayed")
	sig, err := repo.Manifest(ctx, strings.Replace(digest(signed), ":", "-", 1)+".sig")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.PutManifest(ctx, strings.Replace(digest(replayed), ":", "-", 1)+".sig", sig); err != nil {
		t.Fatal(err)
	}

	v := &verify.Verifier{Key: key.Public()}
	if err := v.Image(ctx, signed); err != nil {
		t.Errorf("Image(signed) = %v, want nil", err)
	}
	for _, c := range []struct {
		pinned string
		want   verify.Kind
	}{
		{unsigned, verify.Unsigned},
		{byOther, verify.OtherKey},
		{replayed, verify.BadSignature},
	} {
		err := v.Image(ctx, c.pinned)
		if got := verify.KindOf(err); got != c.want {
			t.Errorf("Image(%s) = %v (kind %v), want kind %v", c.pinned, err, got, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), c.pinned) {
			t.Errorf("Image(%s) = %v, want the image named", c.pinned, err)
		}
	}
	// The other key accepts its own image.
	if err := (&verify.Verifier{Key: other.Public()}).Image(ctx, byOther); err != nil {
		t.Errorf("Image(byOther) with its key = %v, want nil", err)
	}
	if err := v.Image(ctx, host+"/ml/artifacts:signed"); err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Errorf("Image(tag) = %v, want not pinned", err)
	}
}
