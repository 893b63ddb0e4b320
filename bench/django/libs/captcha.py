"""
The course's captcha (`libs/captcha/captcha.py`, after wheezy.captcha) in its shape and cost:
200×75, a light background, four characters sampled from A–Z twice + 3456789, each drawn on
its own layer and warped, rotated and offset, a Bézier curve, noise lines, a smoothing
filter, JPEG. `captcha.generate_captcha()` returns (text, jpeg bytes).
"""
import random
import string
from io import BytesIO

from django.conf import settings
from PIL import Image, ImageDraw, ImageFilter, ImageFont

POOL = string.ascii_uppercase * 2 + '3456789'


def _color(start, end, opacity=None):
    red, green, blue = (random.randint(start, end) for _ in range(3))
    return (red, green, blue) if opacity is None else (red, green, blue, opacity)


class Captcha:
    def __init__(self, width=200, height=75, font_sizes=(40, 44, 48)):
        self.width = width
        self.height = height
        self._fonts = None
        self.font_sizes = font_sizes

    @property
    def fonts(self):
        if self._fonts is None:
            self._fonts = [ImageFont.truetype(settings.CAPTCHA_FONT, size) for size in self.font_sizes]
        return self._fonts

    def background(self, image):
        ImageDraw.Draw(image).rectangle([(0, 0), image.size], fill=_color(238, 255))
        return image

    @staticmethod
    def _bezier(n, steps):
        out = []
        for i in range(steps + 1):
            t = i / steps
            coefficients = [1.0]
            for k in range(1, n):
                coefficients.append(coefficients[-1] * (n - k) / k)
            out.append([c * (t ** k) * ((1 - t) ** (n - 1 - k)) for k, c in enumerate(coefficients)])
        return out

    def curve(self, image, width=4, number=6):
        dx, height = image.size
        dx /= number
        path = [(dx * i, random.randint(0, height)) for i in range(1, number)]
        points = []
        for coefficients in self._bezier(len(path), 100):
            points.append(tuple(sum(c * p[axis] for c, p in zip(coefficients, path)) for axis in (0, 1)))
        ImageDraw.Draw(image).line(points, fill=_color(0, 200), width=width)
        return image

    def noise(self, image, number=50, level=2):
        width, height = image.size
        dx, dy = width / 10, height / 10
        draw = ImageDraw.Draw(image)
        for _ in range(number):
            x = int(random.uniform(dx, width - dx))
            y = int(random.uniform(dy, height - dy))
            draw.line(((x, y), (x + level, y)), fill=_color(0, 200), width=level)
        return image

    @staticmethod
    def warp(image, dx_factor=0.27, dy_factor=0.21):
        width, height = image.size
        dx, dy = width * dx_factor, height * dy_factor
        x1, y1 = int(random.uniform(-dx, dx)), int(random.uniform(-dy, dy))
        x2, y2 = int(random.uniform(-dx, dx)), int(random.uniform(-dy, dy))
        grown = Image.new('RGBA', (width + abs(x1) + abs(x2), height + abs(y1) + abs(y2)))
        grown.paste(image, (abs(x1), abs(y1)))
        w2, h2 = grown.size
        quad = (x1, y1, -x1, h2 - y2, w2 + x2, h2 + y2, w2 - x2, -y1)
        return grown.transform((width, height), Image.QUAD, quad)

    @staticmethod
    def offset(image, dx_factor=0.1, dy_factor=0.2):
        width, height = image.size
        dx = int(random.random() * width * dx_factor)
        dy = int(random.random() * height * dy_factor)
        moved = Image.new('RGBA', (width + dx, height + dy))
        moved.paste(image, (dx, dy))
        return moved

    @staticmethod
    def rotate(image, angle=25):
        return image.rotate(random.uniform(-angle, angle), Image.BILINEAR, expand=1)

    def text(self, image, text, squeeze_factor=0.75):
        color = _color(0, 200, random.randint(220, 255))
        layers = []
        for char in text:
            font = random.choice(self.fonts)
            left, top, right, bottom = font.getbbox(char)
            layer = Image.new('RGBA', (right, bottom))
            ImageDraw.Draw(layer).text((0, 0), char, font=font, fill=color)
            layer = layer.crop(layer.getbbox())
            for drawing in (self.warp, self.rotate, self.offset):
                layer = drawing(layer)
            layers.append(layer)
        width, height = image.size
        offset = int((width - sum(int(layer.size[0] * squeeze_factor) for layer in layers[:-1]) - layers[-1].size[0]) / 2)
        for layer in layers:
            layer_width, layer_height = layer.size
            mask = layer.convert('L').point(lambda i: i * 1.97)
            image.paste(layer, (offset, int((height - layer_height) / 2)), mask)
            offset += int(layer_width * squeeze_factor)
        return image

    def generate_captcha(self):
        text = ''.join(random.sample(POOL, 4))
        image = Image.new('RGB', (self.width, self.height), (255, 255, 255))
        image = self.background(image)
        image = self.text(image, text)
        image = self.curve(image)
        image = self.noise(image)
        image = image.filter(ImageFilter.SMOOTH)
        out = BytesIO()
        image.save(out, format='JPEG')
        return text, out.getvalue()


captcha = Captcha()
