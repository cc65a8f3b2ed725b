//! `stipple eval`: sample quality (Fréchet distance, KID, precision/recall) of generated
//! images against a data folder, in Inception space (pytorch-fid's weights, supplied by the
//! user) or in the space of a feature network trained on the data (`train-features`); prompt
//! adherence by CLIP score with a CLIP folder the user supplies (`clip-score`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use candle_core::{Device, Tensor};
use stipple_eval::{
    clip_score, evaluate, ClipModel, generate_set, guidance_sweep, guidance_table, load_folder, render_sweep_plot, sweep_table, DomainFeatureNet, EvalOptions, EvalReport, FeatureNet,
    FeatureNetConfig, FidInception, KidOptions, LabelledImages, NamedImage, TrainOptions,
};
use stipple_pipeline::{device, GenerateRequest};
use stipple_train::data::{embedded_column, embedded_emoji, load_labels, ColorMode, LabelSource};

use super::StepBar;

/// Measure sample quality.
#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub command: EvalCommand,
}

#[derive(clap::Subcommand)]
pub enum EvalCommand {
    /// Compare a folder of generated images with a folder of reference images.
    Folders(FoldersArgs),
    /// Generate images with a model and compare them with a data folder.
    Model(Box<ModelArgs>),
    /// Train the domain feature network on a labelled data set (or the built-in emoji's categories).
    TrainFeatures(TrainFeaturesArgs),
    /// Quality against cost: FD and precision/recall per sampler and step count, a table, JSON and a plot.
    Sweep(Box<SweepArgs>),
    /// Guidance's trade-off: per guidance scale, how often the feature network's classifier sees the class (or caption)
    /// asked for, and the FD and precision/recall of the same samples.
    Guidance(Box<GuidanceArgs>),
    /// Prompt adherence: the CLIP score (100·max(cos, 0) of CLIP's image and text embeddings, averaged) of a folder of
    /// images against one prompt or each image's caption.
    ClipScore(ClipScoreArgs),
}

#[derive(clap::Args)]
pub struct ClipScoreArgs {
    /// A CLIP model folder in transformers' layout (config.json, model.safetensors, vocab.json, merges.txt,
    /// preprocessor_config.json), e.g. a local copy of openai/clip-vit-base-patch32.
    #[arg(long, value_name = "DIR")]
    pub clip: PathBuf,
    /// Folder of images (sub-folders included).
    pub folder: PathBuf,
    /// The prompt every image is scored against.
    #[arg(long, required_unless_present = "prompts_from", conflicts_with = "prompts_from")]
    pub prompt: Option<String>,
    /// Score each image against its own caption: a labels.csv (or a folder holding one) whose first column names the
    /// images relative to FOLDER.
    #[arg(long, value_name = "CSV")]
    pub prompts_from: Option<PathBuf>,
    /// Column of labels.csv holding the captions.
    #[arg(long, default_value = "caption")]
    pub column: String,
    /// Also write the mean, standard deviation and per-image scores as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// The feature space and the metric settings.
#[derive(clap::Args)]
pub struct SpaceArgs {
    /// pytorch-fid's Inception-v3 weights as safetensors (convert pt_inception-2015-12-05-6726825d.pth with
    /// scripts/convert_fid_inception.py): FID and KID proper. Images are converted to RGB and resized to 299×299.
    #[arg(long, value_name = "FILE", required_unless_present = "features", conflicts_with = "features")]
    pub inception: Option<PathBuf>,
    /// A feature network made by `stipple eval train-features`. Images are resized and cropped to its size.
    #[arg(long, value_name = "FILE")]
    pub features: Option<PathBuf>,
    /// KID subsets.
    #[arg(long, default_value_t = 100)]
    pub kid_subsets: usize,
    /// KID subset size (the smaller set's size if that is less).
    #[arg(long, default_value_t = 1000)]
    pub kid_subset_size: usize,
    /// Neighbourhood size k of precision/recall.
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(clap::Args)]
pub struct FoldersArgs {
    /// Folder of generated images (sub-folders included).
    pub generated: PathBuf,
    /// Folder of reference (real) images.
    pub reference: PathBuf,
    #[command(flatten)]
    pub space: SpaceArgs,
}

/// The model measured and the real images it is measured against.
#[derive(clap::Args)]
pub struct Subject {
    /// The model: a model file, a run folder or a model name [default: the shipped model].
    #[arg(long, short)]
    pub model: Option<PathBuf>,
    /// Folder of models found by name.
    #[arg(long, value_name = "DIR", default_value = super::MODELS_DIR)]
    pub models: PathBuf,
    /// Folder of reference (real) images.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
}

impl Subject {
    /// The model, loaded through the model store.
    fn load(&self, dev: &Device) -> anyhow::Result<std::sync::Arc<stipple_pipeline::StoredModel>> {
        let store = super::model_store(&self.models, dev);
        let path = super::model_path(&store, self.model.as_deref())?;
        Ok(store.load_path(&path.to_string_lossy(), &path)?)
    }
}

/// How the measured images are sampled.
#[derive(clap::Args, Clone)]
pub struct Sampling {
    /// Sampler [default: as `stipple sample`].
    #[arg(long)]
    pub sampler: Option<String>,
    /// σ schedule [default: the sampler's usual one].
    #[arg(long)]
    pub schedule: Option<String>,
    /// Sampling steps [default: as `stipple sample`].
    #[arg(long)]
    pub steps: Option<usize>,
}

impl Sampling {
    fn request(&self) -> GenerateRequest {
        GenerateRequest { sampler: self.sampler.clone(), schedule: self.schedule.clone(), steps: self.steps, ..Default::default() }
    }
}

#[derive(clap::Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub subject: Subject,
    #[command(flatten)]
    pub sampling: Sampling,
    /// Seed of the first image (image i uses seed + i).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Images to generate.
    #[arg(long, short = 'n', default_value_t = 256)]
    pub count: usize,
    /// Images denoised at once.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Class to generate (class-conditional models).
    #[arg(long)]
    pub class: Option<String>,
    /// Prompt (repeat for several; image i gets prompt i mod count).
    #[arg(long)]
    pub prompt: Vec<String>,
    /// Classifier-free guidance scale.
    #[arg(long)]
    pub guidance_scale: Option<f64>,
    #[command(flatten)]
    pub space: SpaceArgs,
}

#[derive(clap::Args)]
pub struct SweepArgs {
    /// Samplers, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "euler,heun,dpmpp_2m")]
    pub samplers: Vec<String>,
    /// Step counts, comma-separated.
    #[arg(long = "steps", value_delimiter = ',', default_value = "4,8,16,32")]
    pub step_counts: Vec<usize>,
    /// Folder for sweep.json and sweep.png (FD against NFE, one line per sampler, log-log).
    #[arg(long, short, value_name = "DIR", default_value = "sweep")]
    pub out: PathBuf,
    /// Disjoint seed sets per point (set r uses seeds seed + r·count + i): the FD is their mean with a 95% interval.
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
    /// The model, data and sampling settings; --sampler and --steps are the sweep's.
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(clap::Args)]
pub struct GuidanceArgs {
    /// The model (class-conditional, or a prompt model whose captions are the classifier's classes) and the real images.
    #[command(flatten)]
    pub subject: Subject,
    #[command(flatten)]
    pub sampling: Sampling,
    /// A feature network made by `stipple eval train-features` on the model's classes: it classifies and embeds.
    #[arg(long, value_name = "FILE")]
    pub features: PathBuf,
    /// Guidance scales, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,4,7")]
    pub scales: Vec<f64>,
    /// Samples per class and scale (class k uses seeds 1000·k, 1000·k + 1, …, the same at every scale).
    #[arg(long, default_value_t = 20)]
    pub per_class: usize,
    /// Neighbourhood size k of precision/recall.
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    /// A CLIP model folder (as `clip-score --clip`): adds the CLIP score of the samples against each class name.
    #[arg(long, value_name = "DIR")]
    pub clip: Option<PathBuf>,
    /// Also write the rows as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(clap::Args)]
pub struct TrainFeaturesArgs {
    /// Labelled data folder [default: the built-in emoji, labelled by category].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Where the class labels come from: csv (a column of labels.csv) or folders (each image's sub-folder).
    #[arg(long, default_value = "csv", value_name = "csv|folders")]
    pub labels: String,
    /// Column of labels.csv holding the class.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Image side the network takes.
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// One grey channel instead of RGB.
    #[arg(long)]
    pub grey: bool,
    /// Training steps.
    #[arg(long, default_value_t = TrainOptions::default().steps)]
    pub steps: usize,
    /// Images per step.
    #[arg(long, default_value_t = TrainOptions::default().batch_size)]
    pub batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = TrainOptions::default().learning_rate)]
    pub learning_rate: f64,
    /// Seed of the weights and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the network.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        EvalCommand::Folders(a) => folders(a),
        EvalCommand::Model(a) => model(*a),
        EvalCommand::TrainFeatures(a) => train_features(a),
        EvalCommand::Sweep(a) => sweep(*a),
        EvalCommand::Guidance(a) => guidance(*a),
        EvalCommand::ClipScore(a) => clip_score_cmd(a),
    }
}

/// The feature network the flags name, and the name of its space.
fn feature_net(space: &SpaceArgs, dev: &Device) -> anyhow::Result<(Box<dyn FeatureNet>, String)> {
    Ok(match (&space.inception, &space.features) {
        (Some(p), _) => (Box::new(FidInception::load(p, dev)?), "inception".to_string()),
        (None, Some(p)) => (Box::new(DomainFeatureNet::load(p, dev)?), format!("domain:{}", p.display())),
        (None, None) => anyhow::bail!("name a feature space: --inception FILE or --features FILE"),
    })
}

fn report(space: &SpaceArgs, net: &dyn FeatureNet, name: &str, generated: &[NamedImage], reference: &[NamedImage]) -> anyhow::Result<ExitCode> {
    let options = EvalOptions { kid: KidOptions { subsets: space.kid_subsets, subset_size: space.kid_subset_size, seed: 0 }, k: space.k };
    let r: EvalReport = evaluate(&net.embed(generated)?, &net.embed(reference)?, name, options)?;
    print!("{}", r.table());
    if name == "inception" && r.generated.min(r.reference) < stipple_eval::inception::FEATURE_DIM {
        println!("note: with fewer images than the 2048 feature dimensions the covariances are singular and FID is strongly biased upwards; compare only runs of equal size");
    }
    if let Some(path) = &space.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn folders(a: FoldersArgs) -> anyhow::Result<ExitCode> {
    let dev = device(&a.space.device)?;
    let (net, name) = feature_net(&a.space, &dev)?;
    report(&a.space, net.as_ref(), &name, &load_folder(&a.generated)?, &load_folder(&a.reference)?)
}

/// The request of `a`'s sampling flags.
fn request(a: &ModelArgs) -> GenerateRequest {
    GenerateRequest {
        seed: a.seed,
        count: Some(a.count),
        batch_size: a.batch_size,
        class: a.class.clone(),
        prompts: a.prompt.clone(),
        guidance_scale: a.guidance_scale,
        ..a.sampling.request()
    }
}

/// The images of `request` (`stipple_eval::generate_set`) under a progress bar.
fn generate_images(model: &stipple_pipeline::Model, request: &GenerateRequest, dev: &Device) -> anyhow::Result<(Vec<NamedImage>, usize)> {
    let spec = request.validate()?;
    let mut bar = StepBar::new(spec.steps * spec.count.div_ceil(spec.batch_size));
    let out = generate_set(model, &spec, dev, &mut bar)?;
    bar.finish();
    Ok(out)
}

fn model(a: ModelArgs) -> anyhow::Result<ExitCode> {
    request(&a).validate()?;
    let dev = device(&a.space.device)?;
    let (net, name) = feature_net(&a.space, &dev)?;
    let reference = load_folder(&a.subject.data)?;
    let stored = a.subject.load(&dev)?;
    let (generated, _) = generate_images(&stored.model, &request(&a), &dev)?;
    report(&a.space, net.as_ref(), &name, &generated, &reference)
}

fn sweep(a: SweepArgs) -> anyhow::Result<ExitCode> {
    let m = &a.model;
    let base = request(m);
    for sampler in &a.samplers {
        for &steps in &a.step_counts {
            GenerateRequest { sampler: Some(sampler.clone()), steps: Some(steps), ..base.clone() }.validate()?;
        }
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let dev = device(&m.space.device)?;
    let (net, _) = feature_net(&m.space, &dev)?;
    let reference = net.embed(&load_folder(&m.subject.data)?)?;
    let stored = m.subject.load(&dev)?;
    let spec = base.validate()?;
    let per_run: usize = a.step_counts.iter().sum::<usize>() * spec.count.div_ceil(spec.batch_size);
    let mut bar = StepBar::new(per_run * a.samplers.len() * a.repeats);
    let points = stipple_eval::sweep(&stored.model, net.as_ref(), &reference, &base, &a.samplers, &a.step_counts, a.repeats, m.space.k, &dev, &mut bar)?;
    bar.finish();
    print!("{}", sweep_table(&points));
    let json = a.out.join("sweep.json");
    std::fs::write(&json, serde_json::to_string_pretty(&points)?).with_context(|| format!("writing {}", json.display()))?;
    let png = a.out.join("sweep.png");
    render_sweep_plot(&points)?.save(&png).with_context(|| format!("writing {}", png.display()))?;
    println!("wrote {} and {}", json.display(), png.display());
    Ok(ExitCode::SUCCESS)
}

fn guidance(a: GuidanceArgs) -> anyhow::Result<ExitCode> {
    let base = a.sampling.request();
    base.validate()?;
    let dev = device(&a.device)?;
    let net = DomainFeatureNet::load(&a.features, &dev)?;
    let clip = a.clip.as_deref().map(|dir| ClipModel::load(dir, &dev)).transpose()?;
    let reference = net.embed(&load_folder(&a.subject.data)?)?;
    let stored = a.subject.load(&dev)?;
    let spec = base.validate()?;
    let calls = a.scales.len() * net.config().classes.len() * spec.steps * a.per_class.div_ceil(spec.batch_size);
    let mut bar = StepBar::new(calls);
    let rows = guidance_sweep(&stored.model, &net, clip.as_ref(), &reference, &base, &a.scales, a.per_class, a.k, &dev, &mut bar)?;
    bar.finish();
    print!("{}", guidance_table(&rows));
    println!("(chance: {:.1}%)", 100.0 / net.config().classes.len() as f64);
    if let Some(json) = &a.json {
        std::fs::write(json, serde_json::to_string_pretty(&rows)?).with_context(|| format!("writing {}", json.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn clip_score_cmd(a: ClipScoreArgs) -> anyhow::Result<ExitCode> {
    let images = load_folder(&a.folder)?;
    let prompts = match (&a.prompt, &a.prompts_from) {
        (Some(p), _) => vec![p.clone()],
        (None, Some(csv)) => {
            // stipple_train's labels.csv reader, matched on the images' paths relative to FOLDER.
            let dir = if csv.is_dir() {
                csv.as_path()
            } else if csv.file_name().is_some_and(|n| n == stipple_train::data::LABELS_FILE) {
                csv.parent().unwrap_or(std::path::Path::new("."))
            } else {
                anyhow::bail!("--prompts-from must name a {} (or a folder holding one), got {}", stipple_train::data::LABELS_FILE, csv.display());
            };
            let names: Vec<String> = images
                .iter()
                .map(|im| im.path.strip_prefix(&a.folder).unwrap_or(&im.path).components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"))
                .collect();
            stipple_train::data::csv_column(dir, &names, &a.column)?
        }
        (None, None) => anyhow::bail!("give --prompt TEXT or --prompts-from labels.csv"),
    };
    let clip = ClipModel::load(&a.clip, &device(&a.device)?)?;
    let score = clip_score(&clip, &images, &prompts)?;
    let std = score.std.map_or("–".to_string(), |s| format!("{s:.2}"));
    println!("CLIP score {:.2} (standard deviation {std}) over {} image–prompt pairs", score.mean, score.pairs.len());
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&score)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Every tenth image is held out to report the accuracy on images not trained on.
const HOLD_OUT_EVERY: usize = 10;

fn train_features(a: TrainFeaturesArgs) -> anyhow::Result<ExitCode> {
    let mode = if a.grey { ColorMode::Grey } else { ColorMode::Rgb };
    let (set, classes, per_image) = match &a.data {
        None => {
            let set = embedded_emoji(a.size, mode)?;
            let raw = embedded_column("category")?;
            let labels = labels_of(&raw);
            (set, labels.0, labels.1)
        }
        Some(dir) => {
            let (set, _) = stipple_train::data::load_folder(dir, a.size, mode, true)?;
            let source = match a.labels.as_str() {
                "csv" => LabelSource::Csv { column: a.label_column.clone() },
                "folders" => LabelSource::Folders,
                other => anyhow::bail!("unknown --labels \"{other}\"; accepted: csv, folders"),
            };
            let labels = load_labels(dir, &set.names, &source)?.expect("a label source was given");
            (set, labels.classes, labels.per_image)
        }
    };
    let dev = device(&a.device)?;
    let c = mode.channels();
    let images = Tensor::from_vec(set.pixels.clone(), (set.len(), c, a.size, a.size), &dev)?;
    let (train_idx, test_idx): (Vec<u32>, Vec<u32>) = (0..set.len() as u32).partition(|i| *i as usize % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1);
    let pick = |idx: &[u32]| -> anyhow::Result<(Tensor, Vec<u32>)> {
        Ok((images.index_select(&Tensor::new(idx, &dev)?, 0)?, idx.iter().map(|&i| per_image[i as usize]).collect()))
    };
    let ((train_x, train_y), (test_x, test_y)) = (pick(&train_idx)?, pick(&test_idx)?);
    let config = FeatureNetConfig { size: a.size, channels: c, classes };
    let n_classes = config.classes.len();
    let mut net = DomainFeatureNet::new(config, a.seed, &dev)?;
    let options = TrainOptions { steps: a.steps, batch_size: a.batch_size, learning_rate: a.learning_rate, seed: a.seed };
    let train_acc = net.train(LabelledImages { images: &train_x, labels: &train_y }, options)?;
    let test_acc = if test_y.is_empty() { f64::NAN } else { net.accuracy(LabelledImages { images: &test_x, labels: &test_y })? };
    net.save(&a.out)?;
    println!(
        "feature network ({n_classes} classes, {} training / {} held-out images): accuracy {:.3} on training, {:.3} held out (chance {:.3}); wrote {}",
        train_y.len(),
        test_y.len(),
        train_acc,
        test_acc,
        1.0 / n_classes as f64,
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Sorted class names of `raw` and each value's index.
fn labels_of(raw: &[String]) -> (Vec<String>, Vec<u32>) {
    let classes: Vec<String> = raw.iter().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let per = raw.iter().map(|r| classes.binary_search(r).expect("collected above") as u32).collect();
    (classes, per)
}

