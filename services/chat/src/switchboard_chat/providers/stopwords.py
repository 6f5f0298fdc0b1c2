"""Words too common to tell sentences apart, Russian and English, as customers and help pages write them."""

from __future__ import annotations

STOPWORDS = frozenset(
    """
    a an the and or but if of to in on at by for with from about as into is are was were be been being do does
    did doing have has had i me my we our you your he she it its they them their this that these those what
    which who whom how why when where there here can could should would will shall may might must not no yes
    please thanks thank hello hi so than then too very just also get got want need tell know
    и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне было вот
    от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять
    уж вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтоб без
    будто чего раз тоже себе под будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти
    мой тем чтобы нее сейчас были куда зачем всех никогда можно при наконец два об другой хоть после над больше
    тот через эти нас про всего них какая много разве три эту моя впрочем хорошо свою этой перед иногда лучше
    чуть том нельзя такой им более всегда конечно всю между скажите подскажите пожалуйста здравствуйте как
    """.split()
)
