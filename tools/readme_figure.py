"""Draw the README's picture: Grad-CAM of the pretrained EfficientNet-Lite0 for "Egyptian cat" and "espresso" on
scikit-image's cat and coffee photos. Writes images/gradcam_cat.jpg.  Usage: python tools/readme_figure.py"""
import io
from pathlib import Path
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
from PIL import Image
from coursekit.data import sample_image
from coursekit.imagenet import imagenet_classifier, imagenet_batch, imagenet_normalize, imagenet_top
from coursekit.cam import grad_cam, show_heatmap

def main(out=Path(__file__).resolve().parent.parent/'images'/'gradcam_cat.jpg'):
    imgs = imagenet_batch([sample_image('cat'), sample_image('coffee')], normalize=False)
    net = imagenet_classifier()
    res = grad_cam(net, imagenet_normalize(imgs), 'bn2')
    top = imagenet_top(res.logits, 1)
    fig, axs = plt.subplots(1, 4, figsize=(14, 3.6))
    for k, ax in enumerate(axs[::2]): ax.imshow(imgs[k].permute(1, 2, 0)); ax.set_title('photo'); ax.axis('off')
    for k, ax in enumerate(axs[1::2]): show_heatmap(imgs[k], res.map[k], ax=ax, title=f'Grad-CAM: {top[k][0][0]} {top[k][0][1]:.2f}')
    fig.suptitle('What a pretrained EfficientNet-Lite0 looked at (coursekit.cam.grad_cam, last feature maps)')
    fig.tight_layout()
    buf = io.BytesIO(); fig.savefig(buf, dpi=80, format='png'); plt.close(fig)
    out.parent.mkdir(exist_ok=True)
    Image.open(buf).convert('RGB').save(out, quality=85)
    print(f'wrote {out}')

if __name__ == '__main__': main()
