package registry

import "time"

// The names below follow the CNCF ModelPack specification v1, Go package
// github.com/modelpack/model-spec/specs-go/v1 (mediatype.go, annotations.go,
// config.go). zen defines them itself because that module cannot be fetched
// here; the names match the spec's so that switching to it is a rename.

// ArtifactTypeModelManifest is the artifactType of a model's manifest.
const ArtifactTypeModelManifest = "application/vnd.cncf.model.manifest.v1+json"

// Media types of a model's config and layers. A ".tar" layer is an
// uncompressed tar archive of files, a ".tar+gzip" layer such a tar
// gzipped, a ".raw" layer the bytes of one file, named by the layer's
// AnnotationFilepath. zen writes ".raw" layers for a file and for a
// directory of plain files, ".tar" layers for other directories, and
// ".tar+gzip" layers only when asked to (ModelMeta.Compress); it reads
// all three, and not the spec's ".tar+zstd".
const (
	// MediaTypeModelConfig is the media type of a model's config blob, a
	// Model in JSON.
	MediaTypeModelConfig = "application/vnd.cncf.model.config.v1+json"

	// MediaTypeModelWeight is a tar of model weights.
	MediaTypeModelWeight = "application/vnd.cncf.model.weight.v1.tar"
	// MediaTypeModelWeightGzip is a gzipped tar of model weights.
	MediaTypeModelWeightGzip = "application/vnd.cncf.model.weight.v1.tar+gzip"
	// MediaTypeModelWeightRaw is one model weights file.
	MediaTypeModelWeightRaw = "application/vnd.cncf.model.weight.v1.raw"

	// MediaTypeModelWeightConfig is a tar of the weights' configuration
	// files: tokenizer.json, config.json and the like.
	MediaTypeModelWeightConfig = "application/vnd.cncf.model.weight.config.v1.tar"
	// MediaTypeModelWeightConfigGzip is a gzipped tar of the weights'
	// configuration files.
	MediaTypeModelWeightConfigGzip = "application/vnd.cncf.model.weight.config.v1.tar+gzip"
	// MediaTypeModelWeightConfigRaw is one configuration file of the weights.
	MediaTypeModelWeightConfigRaw = "application/vnd.cncf.model.weight.config.v1.raw"

	// MediaTypeModelDoc is a tar of documentation: README.md, LICENSE and
	// the like.
	MediaTypeModelDoc = "application/vnd.cncf.model.doc.v1.tar"
	// MediaTypeModelDocGzip is a gzipped tar of documentation.
	MediaTypeModelDocGzip = "application/vnd.cncf.model.doc.v1.tar+gzip"
	// MediaTypeModelDocRaw is one documentation file.
	MediaTypeModelDocRaw = "application/vnd.cncf.model.doc.v1.raw"

	// MediaTypeModelCode is a tar of code: scripts and source files.
	MediaTypeModelCode = "application/vnd.cncf.model.code.v1.tar"
	// MediaTypeModelCodeGzip is a gzipped tar of code.
	MediaTypeModelCodeGzip = "application/vnd.cncf.model.code.v1.tar+gzip"
	// MediaTypeModelCodeRaw is one code file.
	MediaTypeModelCodeRaw = "application/vnd.cncf.model.code.v1.raw"

	// MediaTypeModelDataset is a tar of dataset files.
	MediaTypeModelDataset = "application/vnd.cncf.model.dataset.v1.tar"
	// MediaTypeModelDatasetGzip is a gzipped tar of dataset files.
	MediaTypeModelDatasetGzip = "application/vnd.cncf.model.dataset.v1.tar+gzip"
	// MediaTypeModelDatasetRaw is one dataset file.
	MediaTypeModelDatasetRaw = "application/vnd.cncf.model.dataset.v1.raw"
)

// AnnotationFilepath is the layer annotation naming the file a layer holds,
// as a slash-separated path relative to the model's root.
const AnnotationFilepath = "org.cncf.model.filepath"

// Model is a model's config blob (MediaTypeModelConfig).
type Model struct {
	// Descriptor is the general information about the model.
	Descriptor ModelDescriptor `json:"descriptor"`
	// ModelFS lists the model's layers by content.
	ModelFS ModelFS `json:"modelfs"`
	// Config holds the parameters an inference engine starts from.
	Config ModelConfig `json:"config"`
}

// ModelDescriptor is the general information about a model. The spec makes
// every field optional; zen always writes the name and the version.
type ModelDescriptor struct {
	// CreatedAt is when the model was built. zen leaves it out, so that the
	// same files give the same digest.
	CreatedAt   *time.Time `json:"createdAt,omitempty"`
	Authors     []string   `json:"authors,omitempty"`
	Family      string     `json:"family,omitempty"` // such as "llama3"
	Name        string     `json:"name"`
	DocURL      string     `json:"docURL,omitempty"`
	SourceURL   string     `json:"sourceURL,omitempty"`
	Version     string     `json:"version"`
	Revision    string     `json:"revision,omitempty"` // source control revision
	Vendor      string     `json:"vendor,omitempty"`
	Licenses    []string   `json:"licenses,omitempty"` // SPDX expressions
	Title       string     `json:"title,omitempty"`
	Description string     `json:"description,omitempty"`

	// Card is zen's addition to the spec's fields: the model card, free
	// text such as markdown. Readers of the spec ignore it.
	Card string `json:"card,omitempty"`
}

// ModelFS lists a model's layers by content.
type ModelFS struct {
	// Type is always "layers".
	Type string `json:"type"`
	// DiffIDs are the digests of the layers' uncompressed content, in the
	// manifest's order: for uncompressed layers, their digests; for
	// gzipped ones, the digests of their tars.
	DiffIDs []string `json:"diffIds"`
}

// ModelConfig holds the parameters an inference engine starts from.
type ModelConfig struct {
	Architecture string `json:"architecture,omitempty"` // such as "transformer"
	Format       string `json:"format,omitempty"`       // such as "onnx"
	ParamSize    string `json:"paramSize,omitempty"`    // such as "8b"
	Precision    string `json:"precision,omitempty"`    // such as "bf16"
	Quantization string `json:"quantization,omitempty"` // such as "awq"
}
