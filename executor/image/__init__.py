"""The executor's reproducible OCI image: the builder (`build`), its Debian root filesystem (`debian`), deterministic
layers and layout (`oci`) and the RTMR3 a TD running the image must show (`measure`). Build tooling: nothing here
is copied into the image."""
