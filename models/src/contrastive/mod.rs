//! The contrastive core shared by MoCo and Exemplar: the key queue, the momentum update of the
//! key encoder and the (label-masked) InfoNCE loss.
pub mod loss;
pub mod momentum;
pub mod queue;
