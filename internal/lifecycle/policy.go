package lifecycle

// TagStatus is a rule's selection.tagStatus: which images the rule looks at
// by their tags.
type TagStatus string

// Tag statuses ("Tag status", lifecycle policy properties).
const (
	// TagStatusTagged selects images with at least one tag that satisfy the
	// rule's tagPrefixList or tagPatternList.
	TagStatusTagged TagStatus = "tagged"
	// TagStatusUntagged selects images without tags.
	TagStatusUntagged TagStatus = "untagged"
	// TagStatusAny selects every image ("all images have the rule evaluated
	// against them").
	TagStatusAny TagStatus = "any"
)

// CountType is a rule's selection.countType: the limit the rule enforces.
type CountType string

// Count types ("Count type", lifecycle policy properties).
const (
	// CountImageCountMoreThan keeps the countNumber newest images the rule
	// matches (by push time) and selects the older ones.
	CountImageCountMoreThan CountType = "imageCountMoreThan"
	// CountSinceImagePushed selects images pushed more than countNumber days ago.
	CountSinceImagePushed CountType = "sinceImagePushed"
	// CountSinceImagePulled selects images last pulled more than countNumber
	// days ago; only with the transition action.
	CountSinceImagePulled CountType = "sinceImagePulled"
	// CountSinceImageTransitioned selects archived images archived more than
	// countNumber days ago; only with the expire action and storageClass archive.
	CountSinceImageTransitioned CountType = "sinceImageTransitioned"
)

// ActionType is a rule's action.type.
type ActionType string

// Action types ("Action", lifecycle policy properties).
const (
	// ActionExpire deletes the image.
	ActionExpire ActionType = "expire"
	// ActionTransition moves the image to targetStorageClass (archive). An
	// archived image cannot be pulled ("Requests to pull the archived image
	// will fail with a 404 error", "Archiving an image" in the ECR User Guide).
	ActionTransition ActionType = "transition"
)

// Storage classes as a policy spells them (selection.storageClass and
// action.targetStorageClass).
const (
	StorageClassStandard = "standard"
	StorageClassArchive  = "archive"
)

// CountUnitDays is the only count unit ECR accepts.
const CountUnitDays = "days"

// Policy is a parsed lifecycle policy: its rules sorted by rulePriority, the
// order in which ECR applies them.
type Policy struct {
	Rules []Rule
}

// Rule is one element of the policy's "rules" array.
type Rule struct {
	// Priority is rulePriority: unique in the policy, applied lowest first.
	Priority    int
	Description string
	Selection   Selection
	Action      Action
}

// Selection is a rule's "selection" object: which images the rule looks at
// (tag status, tag lists, storage class) and the limit it enforces on them.
type Selection struct {
	TagStatus TagStatus
	// TagPrefixList and TagPatternList (at most one is set, only for tagged
	// rules): an image matches when every entry matches at least one of its
	// tags. Patterns are whole-tag matches in which '*' stands for any run of
	// characters.
	TagPrefixList  []string
	TagPatternList []string
	// StorageClass is StorageClassStandard (the default when the policy omits
	// it) or StorageClassArchive: the rule looks only at images in that
	// storage class.
	StorageClass string
	CountType    CountType
	// CountUnit is CountUnitDays for the since* count types, "" otherwise.
	CountUnit string
	// CountNumber is the number of images to keep (imageCountMoreThan) or the
	// number of days (since*); always positive.
	CountNumber int
}

// Action is a rule's "action" object.
type Action struct {
	Type ActionType
	// TargetStorageClass is StorageClassArchive for ActionTransition, "" for
	// ActionExpire.
	TargetStorageClass string
}
