package manifest

// Sample is exported for the external tests of this directory.
var Sample = sample
var Signed = signed
