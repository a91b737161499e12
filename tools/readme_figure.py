"""Draw the README's picture: Grad-CAM of the pretrained EfficientNet-Lite0 for its top class on scikit-image's cat
and coffee photos, each whole, its shorter side resized to 224 pixels, as `coursekit gradcam` shows a photo.
Writes images/gradcam_cat.jpg.  Usage: python tools/readme_figure.py"""
import io
from pathlib import Path
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
from PIL import Image
from coursekit.core import draw_image
from coursekit.data import sample_image
from coursekit.imagenet import imagenet_classifier, imagenet_batch, imagenet_normalize, imagenet_top, short_side_size
from coursekit.cam import grad_cam, show_heatmap

def main(out=Path(__file__).resolve().parent.parent/'images'/'gradcam_cat.jpg'):
    photos = [sample_image('cat'), sample_image('coffee')]
    imgs = [imagenet_batch(p, size=short_side_size(*p.shape[-2:]), normalize=False, fit='squash') for p in photos]
    net = imagenet_classifier()
    ratios = [w / h for im in imgs for h, w in [im.shape[-2:]] * 2]
    fig, axs = plt.subplots(1, 4, figsize=(16, 3.4), gridspec_kw={'width_ratios': ratios})
    for k, img in enumerate(imgs):
        res = grad_cam(net, imagenet_normalize(img), 'bn2')
        (name, p), = imagenet_top(res.logits, 1)[0]
        draw_image(img[0], axs[2 * k], 'photo'); axs[2 * k].axis('off')
        show_heatmap(img[0], res.map[0], ax=axs[2 * k + 1], title=f'Grad-CAM for "{name}" ({p:.2f})',
                     label='Grad-CAM, scaled to [0, 1]')
    fig.suptitle('What a pretrained EfficientNet-Lite0 looked at in two whole photos '
                 '(coursekit.cam.grad_cam, last feature maps)')
    fig.tight_layout()
    buf = io.BytesIO(); fig.savefig(buf, dpi=80, format='png'); plt.close(fig)
    out.parent.mkdir(exist_ok=True)
    Image.open(buf).convert('RGB').save(out, quality=85)
    print(f'wrote {out}')

if __name__ == '__main__': main()
