//! Sample quality measured while a model trains: every K steps, images from the EMA weights
//! at fixed seeds against the training images in a domain feature space (Fréchet distance,
//! KID, precision/recall), logged by the run's dashboard ([`stipple_train::MetricsLog`]).

use std::ops::ControlFlow;

use candle_core::Tensor;
use stipple_pipeline::{to_images, GenerateRequest};
use stipple_train::{MetricsLog, StepStats, TrainError, TrainObserver, Trainer};

use crate::{evaluate, generate_set, DomainFeatureNet, EvalError, EvalOptions, FeatureNet, Features, NamedImage};

/// The figure drawn in the run's `metrics.png`.
const PLOTTED: &str = "fd";

/// An observer that measures sample quality every `every` steps and at the last step.
pub struct TrainingMetrics {
    net: DomainFeatureNet,
    every: usize,
    count: usize,
    options: EvalOptions,
    /// The training images' features and the log, from the start of the session.
    session: Option<(Features, MetricsLog)>,
}

impl TrainingMetrics {
    /// Measures with `net` (made by `stipple eval train-features` on the same data) on
    /// `count` images (seeds 0, 1, …, sampled at the generation defaults; a text model
    /// cycles through its sample prompts) every `every` steps.
    pub fn new(net: DomainFeatureNet, every: usize, count: usize, options: EvalOptions) -> Result<Self, EvalError> {
        if every == 0 {
            return Err(EvalError::setting("eval_every", "must be at least 1"));
        }
        let needed = (options.k + 1).max(2);
        if count < needed {
            return Err(EvalError::setting("eval_count", format!("at least {needed} images are needed (k = {}), got {count}", options.k)));
        }
        Ok(Self { net, every, count, options, session: None })
    }

    fn measure(&mut self, trainer: &Trainer, step: usize) -> Result<(), EvalError> {
        let (reference, log) = self.session.as_mut().expect("opened in on_start");
        let model = stipple_pipeline::Model::Stipple(Box::new(trainer.ema_model().map_err(boxed)?));
        let request = GenerateRequest { count: Some(self.count), prompts: trainer.sample_prompts(), ..GenerateRequest::default() };
        let (images, _) = generate_set(&model, &request.validate()?, trainer.device(), &mut ())?;
        let report = evaluate(&self.net.embed(&images)?, reference, "domain", self.options)?;
        let figures = [
            (PLOTTED, report.fd),
            ("kid", report.kid.mean),
            ("precision", report.precision_recall.precision),
            ("recall", report.precision_recall.recall),
        ];
        log.log(step, &figures).map_err(boxed)
    }
}

fn boxed(e: TrainError) -> EvalError {
    EvalError::Training(Box::new(e))
}

/// The training images as the evaluator takes them (8-bit, as if read from files).
fn training_images(trainer: &Trainer) -> Result<Vec<NamedImage>, EvalError> {
    let set = trainer.data();
    if set.sample_dims().len() != 3 {
        return Err(EvalError::setting("eval_every", "measures the quality of images with an image feature network; this run trains on sequences (series windows or sound clips)"));
    }
    let all: Vec<usize> = (0..set.len()).collect();
    let shape: Vec<usize> = std::iter::once(set.len()).chain(set.sample_dims()).collect();
    let batch = Tensor::from_vec(set.batch(&all, &vec![false; all.len()]), shape, trainer.device())?;
    Ok(to_images(&batch)?.into_iter().zip(set.names()).map(|(image, name)| NamedImage { path: name.into(), image }).collect())
}

impl TrainObserver for TrainingMetrics {
    fn on_start(&mut self, trainer: &Trainer) -> Result<(), TrainError> {
        let fail = |e: EvalError| TrainError::Observer { what: "embedding the training images", step: trainer.steps_done(), source: Box::new(e) };
        let reference = training_images(trainer).and_then(|images| self.net.embed(&images)).map_err(fail)?;
        self.session = Some((reference, MetricsLog::open(trainer.run_dir(), trainer.checkpoint_step(), PLOTTED)?));
        Ok(())
    }

    fn on_step(&mut self, trainer: &Trainer, stats: &StepStats) -> Result<ControlFlow<()>, TrainError> {
        if stats.step.is_multiple_of(self.every) || stats.step == trainer.total_steps() {
            self.measure(trainer, stats.step)
                .map_err(|e| TrainError::Observer { what: "measuring sample quality", step: stats.step, source: Box::new(e) })?;
        }
        Ok(ControlFlow::Continue(()))
    }
}
