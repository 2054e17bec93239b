//! `exemplar_kernels::conv2d` against burn's own convolution on the flex backend: the same
//! output and the same gradients for input, weight and bias, through burn's autodiff.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Distribution, Tensor};

fn assert_close(got: Tensor<4>, want: Tensor<4>, what: &str) {
    let got = got.into_data().try_to_vec::<f32>().expect("f32");
    let want = want.into_data().try_to_vec::<f32>().expect("f32");
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "{what}[{i}]: {g} != {w}"
        );
    }
}

fn flat(t: Tensor<1>) -> Tensor<4> {
    let n = t.dims()[0];
    t.reshape([1, 1, 1, n])
}

fn check(config: Conv2dConfig, input: [usize; 4]) {
    let device = Device::flex().autodiff();
    let conv = config.init(&device);
    let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device).require_grad();
    let ours = exemplar_kernels::conv2d(&conv, x.clone());
    let theirs = conv.forward(x.clone());
    assert_close(ours.clone(), theirs.clone(), "output");

    // The gradients of one weighted sum of the outputs.
    let mix = Tensor::<4>::random(ours.dims(), Distribution::Normal(0.0, 1.0), &device);
    let grads_ours = (ours * mix.clone()).sum().backward();
    let grads_theirs = (theirs * mix).sum().backward();
    let grad = |t: &Tensor<4>, g| t.grad(g).expect("gradient");
    assert_close(
        grad(&x, &grads_ours),
        grad(&x, &grads_theirs),
        "input gradient",
    );
    let weight = conv.weight.val();
    assert_close(
        grad(&weight, &grads_ours),
        grad(&weight, &grads_theirs),
        "weight gradient",
    );
    if let Some(bias) = &conv.bias {
        let bias = bias.val();
        assert_close(
            flat(bias.grad(&grads_ours).expect("bias gradient")),
            flat(bias.grad(&grads_theirs).expect("bias gradient")),
            "bias gradient",
        );
    }
}

#[test]
fn matches_burn_on_the_shapes_the_models_use() {
    // ResNet 3×3 (stride 1 and 2), 1×1 projections, the 7×7 stem, a dilated head convolution
    // with bias, and an asymmetric padding.
    check(
        Conv2dConfig::new([4, 6], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false),
        [3, 4, 10, 9],
    );
    check(
        Conv2dConfig::new([4, 6], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false),
        [2, 4, 9, 9],
    );
    check(
        Conv2dConfig::new([8, 5], [1, 1]).with_stride([2, 2]),
        [2, 8, 6, 6],
    );
    check(
        Conv2dConfig::new([3, 4], [7, 7])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
            .with_bias(false),
        [2, 3, 16, 16],
    );
    check(
        Conv2dConfig::new([4, 4], [3, 3])
            .with_dilation([2, 2])
            .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2)),
        [2, 4, 7, 7],
    );
    check(
        Conv2dConfig::new([2, 3], [2, 3]).with_padding(PaddingConfig2d::Explicit(1, 0, 0, 2)),
        [2, 2, 5, 6],
    );
}

#[test]
fn falls_back_to_burn_where_the_kernel_does_not_apply() {
    // `Same` padding and groups go through burn's convolution (and give its result).
    check(
        Conv2dConfig::new([4, 4], [3, 3]).with_padding(PaddingConfig2d::Same),
        [2, 4, 6, 6],
    );
    check(
        Conv2dConfig::new([4, 4], [3, 3]).with_groups(2),
        [2, 4, 6, 6],
    );
}

#[test]
fn runs_without_autodiff_for_inference() {
    let device = Device::flex();
    let conv = Conv2dConfig::new([3, 2], [3, 3]).init(&device);
    let x = Tensor::<4>::random([1, 3, 5, 5], Distribution::Normal(0.0, 1.0), &device);
    assert_close(
        exemplar_kernels::conv2d(&conv, x.clone()),
        conv.forward(x),
        "inference output",
    );
}

fn assert_close_1d(got: Tensor<1>, want: Tensor<1>, what: &str) {
    assert_close(flat(got), flat(want), what);
}

#[test]
fn batch_norm_matches_burn_in_training_and_updates_the_same_running_statistics() {
    use burn::nn::BatchNormConfig;
    let device = Device::flex().autodiff();
    let ours = BatchNormConfig::new(5).init(&device);
    let theirs = BatchNormConfig::new(5).init(&device);
    // Distinct γ and β, the same in both.
    let gamma = Tensor::<1>::random([5], Distribution::Normal(1.0, 0.5), &device);
    let beta = Tensor::<1>::random([5], Distribution::Normal(0.0, 0.5), &device);
    let set = |bn: burn::nn::BatchNorm| burn::nn::BatchNorm {
        gamma: burn::module::Param::from_tensor(gamma.clone()),
        beta: burn::module::Param::from_tensor(beta.clone()),
        ..bn
    };
    let (ours, theirs) = (set(ours), set(theirs));
    for round in 0..2 {
        let x = Tensor::<4>::random([3, 5, 4, 6], Distribution::Normal(2.0, 3.0), &device)
            .require_grad();
        let out_ours = exemplar_kernels::batch_norm(&ours, x.clone());
        let out_theirs = theirs.forward(x.clone());
        assert_close(out_ours.clone(), out_theirs.clone(), "output");
        let mix = Tensor::<4>::random(x.dims(), Distribution::Normal(0.0, 1.0), &device);
        let g_ours = (out_ours * mix.clone()).sum().backward();
        let g_theirs = (out_theirs * mix).sum().backward();
        assert_close(
            x.grad(&g_ours).expect("dx"),
            x.grad(&g_theirs).expect("dx"),
            "input gradient",
        );
        for (name, p_ours, p_theirs) in [
            ("gamma", ours.gamma.val(), theirs.gamma.val()),
            ("beta", ours.beta.val(), theirs.beta.val()),
        ] {
            assert_close_1d(
                p_ours.grad(&g_ours).expect("gradient"),
                p_theirs.grad(&g_theirs).expect("gradient"),
                name,
            );
        }
        assert_close_1d(
            ours.running_mean.value(),
            theirs.running_mean.value(),
            &format!("running mean after round {round}"),
        );
        assert_close_1d(
            ours.running_var.value(),
            theirs.running_var.value(),
            &format!("running variance after round {round}"),
        );
    }
    // Inference (no autodiff) uses the running statistics, through burn.
    let x = Tensor::<4>::random(
        [2, 5, 3, 3],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    );
    let ours = ours.valid();
    assert_close(
        exemplar_kernels::batch_norm(&ours, x.clone()),
        ours.forward(x),
        "inference output",
    );
}
