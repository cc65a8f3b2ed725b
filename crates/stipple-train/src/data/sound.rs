//! Sound as training data: the WAV clips of a folder made alike by `stipple_audio::load_clips`
//! (resampled to the run's rate, mono, silence trimmed, fitted to the network's length), one
//! training sample per file.

use stipple_audio::ClipSet;

use super::TrainingSet;

impl TrainingSet for ClipSet {
    fn len(&self) -> usize {
        self.names.len()
    }

    fn sample_dims(&self) -> Vec<usize> {
        vec![1, self.clips.first().map_or(0, Vec::len)]
    }

    fn batch(&self, indices: &[usize], flip: &[bool]) -> Vec<f32> {
        assert_eq!(indices.len(), flip.len(), "batch: one flip flag per index");
        let mut out = Vec::new();
        for (&i, &reverse) in indices.iter().zip(flip) {
            if reverse {
                out.extend(self.clips[i].iter().rev());
            } else {
                out.extend_from_slice(&self.clips[i]);
            }
        }
        out
    }

    fn names(&self) -> &[String] {
        &self.names
    }
}
